"""What ``-t`` accepts: the project's JSON, a CSV or JSONL of rows, the paper's annotation shape
(a JSON list per split), the official task names as aliases; unknown names get a suggestion."""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskvec.cli import app
from taskvec.errors import TaskFileError
from taskvec.tasks.registry import load_task, load_tasks, resolve_task_names


def test_a_csv_with_a_split_column_is_a_task(tmp_path):
    path = tmp_path / "colors.csv"
    path.write_text(
        "split,input,output,aliases,instruction\n"
        "val,banana,yellow,,The color of the food:\n"
        "val,tomato,red,,\n"
        "test,lime,green,lime green|green,\n"
    )
    task = load_task(path)
    assert task.name == "colors" and task.instruction == "The color of the food:"
    assert [i.label for i in task.val] == ["yellow", "red"]
    assert task.test[0].aliases == ("lime green", "green")


def test_the_papers_files_given_by_either_split_with_the_official_name(tmp_path):
    (tmp_path / "country-capital_val.jsonl").write_text(
        '{"input": "France", "output": "Paris", "image": "fr.png"}\n'
    )
    (tmp_path / "country-capital_test.jsonl").write_text('{"input": "Japan", "output": "Tokyo"}\n')
    for given in ("country-capital_val.jsonl", "country-capital_test.jsonl"):
        task = load_task(tmp_path / given)
        assert task.name == "country-capital"
        assert task.instruction == load_task("country_capital").instruction  # the built-in's
        assert task.val[0].entity == str(tmp_path / "fr.png")  # relative to the task file
        assert task.test[0].label == "Tokyo"


def test_a_json_list_in_the_papers_shape(tmp_path):
    (tmp_path / "cap_val.json").write_text(json.dumps([{"input": "France", "output": "Paris"}]))
    (tmp_path / "cap_test.json").write_text(json.dumps([{"input": "Japan", "output": "Tokyo"}]))
    with pytest.raises(TaskFileError, match="no instruction"):
        load_task(tmp_path / "cap_val.json")
    rows = [{"input": "Chile", "output": "Santiago", "instruction": "The capital city of the country:"}]
    (tmp_path / "cap_test.json").write_text(json.dumps(rows))
    assert load_task(tmp_path / "cap_val.json").test[0].label == "Santiago"


def test_rows_without_splits_are_refused_in_one_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"input": "a", "output": "b"}\n')
    with pytest.raises(TaskFileError, match="'split' column"):
        load_task(path)


def test_official_names_are_aliases_of_the_builtin_tasks():
    assert load_task("country-capital") == load_task("country_capital")
    assert resolve_task_names(["food-color", "animal_young"]) == ["food_color", "animal_young"]


def test_an_unknown_task_name_suggests_the_closest():
    with pytest.raises(TaskFileError, match="did you mean 'country_capital'"):
        load_task("country_capitol")


def test_run_takes_a_csv_task(tmp_path, monkeypatch):
    path = tmp_path / "toy.csv"
    path.write_text("split,input,output,instruction\nval,a,b,Do:\ntest,c,d,\n")
    loaded = []

    def capture(config, *_args, **_kwargs):
        loaded.extend(load_task(name) for name in config.tasks)
        raise SystemExit(0)

    monkeypatch.setattr("taskvec.pipelines.evaluate.evaluate", capture)
    result = CliRunner().invoke(app, ["run", "-t", str(path)])
    assert result.exit_code == 0, result.output
    assert loaded[0].name == "toy"


def test_the_examples_of_docs_task_files_load(tmp_path):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "task-files.md").read_text(encoding="utf-8")
    blocks = dict.fromkeys(("json", "csv"))
    for kind, body in re.findall(r"```(json|csv)\n(.*?)```", doc, flags=re.S):
        blocks[kind] = blocks[kind] or body
    (tmp_path / "capitals.json").write_text(blocks["json"], encoding="utf-8")
    task = load_task(tmp_path / "capitals.json")
    assert task.val[0].entity == str(tmp_path / "flags" / "fr.png")
    assert task.val[1].entity == "🇯🇵" and task.test[1].entity is None
    (tmp_path / "colors.csv").write_text(blocks["csv"], encoding="utf-8")
    colors = load_task(tmp_path / "colors.csv")
    assert colors.instruction == "The color of the food:"
    assert colors.test[0].aliases == ("lime green", "green")


def test_a_task_files_suffix_is_read_in_any_case(tmp_path):
    """``-t UPPER.CSV`` was parsed as JSON (and refused as not valid JSON): suffixes were compared
    case-sensitively wherever the file's kind was chosen."""
    rows = "split,input,output,instruction\nval,a,b,Do:\ntest,c,d,\n"
    (tmp_path / "lower.csv").write_text(rows)
    (tmp_path / "UPPER.CSV").write_text(rows)
    lines = [
        {"split": "val", "input": "a", "output": "b", "instruction": "Do:"},
        {"split": "test", "input": "c", "output": "d"},
    ]
    (tmp_path / "Rows.JsonL").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    expected = load_task(tmp_path / "lower.csv")
    for given, name in (("UPPER.CSV", "UPPER"), ("Rows.JsonL", "Rows")):
        task = load_task(tmp_path / given)
        assert (task.name, task.instruction, task.val, task.test) == (
            name,
            "Do:",
            expected.val,
            expected.test,
        )
    # the paper's layout: either split file, its sibling of the same suffix
    (tmp_path / "cap_val.CSV").write_text("input,output,instruction\nFrance,Paris,The capital:\n")
    (tmp_path / "cap_test.CSV").write_text("input,output\nChile,Santiago\n")
    task = load_task(tmp_path / "cap_test.CSV")
    assert (task.name, task.val[0].label, task.test[0].label) == ("cap", "Paris", "Santiago")


def test_a_task_file_named_with_a_builtins_official_name_is_refused_beside_it(tmp_path):
    """``-t ann/country-capital_val.json country_capital`` ran both, as tasks ``country-capital``
    and ``country_capital``: names were compared as written, not as the built-in task they name."""
    (tmp_path / "country-capital_val.json").write_text(json.dumps([{"input": "France", "output": "Paris"}]))
    (tmp_path / "country-capital_test.json").write_text(json.dumps([{"input": "Japan", "output": "Tokyo"}]))
    file = str(tmp_path / "country-capital_val.json")
    for references in ([file, "country_capital"], ["country-capital", file]):
        with pytest.raises(
            TaskFileError,
            match=r"two tasks are named 'country.capital' and 'country.capital', one built-in task's names",
        ):
            load_tasks(references)
    # alone, or beside another built-in task, it runs under the name it has
    assert [task.name for task in load_tasks([file, "food_color"])] == ["country-capital", "food_color"]
