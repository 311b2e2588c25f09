"""``taskvec prompts`` shows the prompts a run writes for a test item, with no model: the same
demonstrations, in the same order, as the run's unit records for that item."""

from __future__ import annotations

import json

from helpers.reliability import TINY, write_tiny_task
from helpers.tinyllm import tiny_llm
from typer.testing import CliRunner

from taskvec.cli import app
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.evaluate import evaluate
from taskvec.tasks.task import load_task_file


def _sections(output: str) -> dict[str, str]:
    """The command's output by section title (the text before ``─`` on a rule line)."""
    sections, title = {}, None
    for line in output.splitlines():
        if "───" in line:
            title = line.split("─")[0].strip()
            sections[title] = ""
        elif title is not None and not line.startswith("ends with"):
            sections[title] += line + "\n"
    return sections


def test_the_xbase_prompt_shown_holds_the_demonstrations_the_run_drew(tmp_path):
    path = write_tiny_task(tmp_path)
    task = load_task_file(path)
    options = {**TINY, "tasks": [str(path)], "seeds": [2], "template": "paper", "layers": [1]}
    config = ExperimentConfig.create(**options)
    run = evaluate(config, tmp_path / "run", adapter=tiny_llm("llama", layers=3), show_progress=False)
    unit = json.loads((run.folder.unit_path(task.name, 2)).read_text())
    by_id = {item.id: item for item in task.val}

    args = ["prompts", str(path), "--seed", "2", "--item", "1", "--template", "paper"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    sections = _sections(result.output)
    demos = "".join(f"Q:{by_id[d].input}\nA:{by_id[d].label}\n\n" for d in unit["test"][1]["demos"])
    assert sections["xBase prompt"] == demos + f"Q:{task.test[1].input}\nA:\n"
    assert sections["query (No Context; xPatch patches its last token)"] == f"Q:{task.test[1].input}\nA:\n"


def test_an_item_past_the_split_and_a_template_with_a_bad_delimiter_are_one_line(tmp_path):
    path = write_tiny_task(tmp_path)
    result = CliRunner().invoke(app, ["prompts", str(path), "--item", "3"])
    assert result.exit_code == 2 and "--item 3: task 'tiny_food' has 3 test items (0 to 2)" in result.output
    template = tmp_path / "sp.json"
    template.write_text(json.dumps({"name": "sp", "output_prefix": "A: ", "delimiter": " "}))
    result = CliRunner().invoke(app, ["prompts", str(path), "--template", str(template)])
    assert result.exit_code == 2 and "ends in white space" in result.output


def test_a_template_file_with_a_misspelt_field_names_the_file_and_its_fields(tmp_path):
    """It said ``--template.answer_prefx: Extra inputs are not permitted``: neither the file nor
    the fields a template holds."""
    template = tmp_path / "mine.json"
    template.write_text(json.dumps({"name": "mine", "answer_prefx": " "}))
    result = CliRunner().invoke(
        app, ["prompts", "country_capital", "--template", str(template)], env={"COLUMNS": "300"}
    )
    said = " ".join(result.stderr.split())
    assert (
        result.exit_code == 2 and f"template file {template}: 'answer_prefx' is not a template field" in said
    )
    assert "did you mean 'answer_prefix'?" in said and "output_prefix" in said
