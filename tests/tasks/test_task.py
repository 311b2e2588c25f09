import json
import re

import pytest

from taskvec.errors import TaskFileError
from taskvec.tasks.registry import BUILTIN_TASKS, load_task
from taskvec.tasks.task import load_rows_task, load_split_files, load_task_file


def _write(path, payload):
    path.write_text(json.dumps(payload))
    return path


def _task(**overrides):
    task = {
        "name": "toy",
        "instruction": "The thing:",
        "val": [{"id": "a", "input": "x", "output": "y"}],
        "test": [{"id": "b", "input": "u", "output": "v"}],
    }
    task.update(overrides)
    return task


@pytest.mark.parametrize("name", BUILTIN_TASKS)
def test_builtin_tasks_load_with_disjoint_splits(name):
    task = load_task(name)
    assert task.val and task.test
    assert not {i.id for i in task.val} & {i.id for i in task.test}
    assert all(item.entity for item in (*task.val, *task.test))


def test_country_tasks_have_the_paper_split_sizes():
    for name in ("country_capital", "country_currency"):
        task = load_task(name)
        assert (len(task.val), len(task.test)) == (30, 100)


def test_near_identical_flags_never_share_a_split():
    for name in ("country_capital", "country_currency"):
        task = load_task(name)
        groups = task.extra["near_identical_groups"]
        for split in ("val", "test"):
            ids = {item.id for item in task.split(split)}
            for group in groups:
                assert len(ids & set(group)) <= 1, (name, split, group)


def test_no_alias_is_the_query_itself():
    for name in BUILTIN_TASKS:
        for item in (*load_task(name).val, *load_task(name).test):
            assert item.input.lower() not in [a.lower() for a in item.aliases], (name, item)


def test_missing_field_is_named(tmp_path):
    bad = _task(val=[{"id": "a", "input": "x"}])
    with pytest.raises(TaskFileError, match=r"val\.0\.output"):
        load_task_file(_write(tmp_path / "t.json", bad))


def test_empty_split_is_refused(tmp_path):
    with pytest.raises(TaskFileError, match="test split is empty"):
        load_task_file(_write(tmp_path / "t.json", _task(test=[])))


def test_duplicate_ids_across_splits_are_refused(tmp_path):
    bad = _task(test=[{"id": "a", "input": "u", "output": "v"}])
    with pytest.raises(TaskFileError, match="appears twice"):
        load_task_file(_write(tmp_path / "t.json", bad))


def test_a_task_named_like_the_tables_average_row_is_refused(tmp_path):
    """Every table's "average" row is the mean over tasks: a task of that name would be overwritten
    by it (and the shared layer chosen on that task alone), from a JSON file or a CSV's name."""
    with pytest.raises(TaskFileError, match="'average' is the tables' row for the mean over tasks"):
        load_task_file(_write(tmp_path / "t.json", _task(name="Average")))
    (tmp_path / "average.csv").write_text("split,input,output\nval,x,y\ntest,u,v\n")
    with pytest.raises(TaskFileError, match="rename the task"):
        load_rows_task(tmp_path / "average.csv", instruction_of=lambda name: "Do:")
    assert load_task_file(_write(tmp_path / "t.json", _task(name="averages"))).name == "averages"


@pytest.mark.parametrize(
    "name", ["../../escaped", "a/b", "a\\b", "..", ".hidden", "a..b", "t:1", "a\x00b", "a" * 121, "語" * 41]
)
def test_a_task_name_that_cannot_name_a_file_in_the_run_folder_is_refused(tmp_path, name):
    """A task named "../../escaped" made a run write its units and vectors outside its folder; one
    of 250 letters failed with "File name too long" after its whole unit was computed."""
    path = _write(tmp_path / "t.json", _task(name=name))
    with pytest.raises(TaskFileError, match=r"t\.json\): a task's name may hold only letters, digits"):
        load_task_file(path)


@pytest.mark.parametrize("name", [*BUILTIN_TASKS, "country-capital", "Länder v1.2", "my task_2", "a" * 120])
def test_ordinary_task_names_are_kept(tmp_path, name):
    assert load_task_file(_write(tmp_path / "t.json", _task(name=name))).name == name


def test_a_label_with_a_character_no_model_writes_is_refused(tmp_path):
    """'Par\u200bis' looks like Paris but no greedy answer can ever equal it: the item never scores."""
    with pytest.raises(
        TaskFileError, match=r"test.0.output: .*U\+200B zero-width space, which no model writes"
    ):
        load_task_file(
            _write(tmp_path / "t.json", _task(test=[{"id": "b", "input": "u", "output": "Par\u200bis"}]))
        )
    with pytest.raises(TaskFileError, match="U\\+00AD soft hyphen"):
        load_task_file(
            _write(
                tmp_path / "t.json",
                _task(test=[{"id": "b", "input": "u", "output": "v", "aliases": ["Ber\u00adlin"]}]),
            )
        )
    assert load_task_file(_write(tmp_path / "t.json", _task())).test[0].label == "v"


def test_blank_label_and_bad_json_are_refused(tmp_path):
    with pytest.raises(TaskFileError, match="blank"):
        load_task_file(_write(tmp_path / "t.json", _task(val=[{"id": "a", "input": "x", "output": "  "}])))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(TaskFileError, match="not valid JSON"):
        load_task_file(tmp_path / "broken.json")
    with pytest.raises(TaskFileError, match="not found"):
        load_task_file(tmp_path / "absent.json")
    with pytest.raises(TaskFileError, match="unknown task"):
        load_task("no_such_task")


def test_paper_annotation_layout_and_jsonl_csv(tmp_path):
    _write(tmp_path / "cap_val.json", [{"input": "France", "output": "Paris", "image": "fr.png"}])
    _write(tmp_path / "cap_test.json", [{"input": "Japan", "output": "Tokyo", "image": "jp.png"}])
    task = load_split_files(tmp_path / "cap_val.json", tmp_path / "cap_test.json", "cap", "The capital:")
    assert task.val[0].label == "Paris"
    assert task.test[0].entity == str(tmp_path / "jp.png")  # relative to the task file

    (tmp_path / "v.jsonl").write_text('{"input": "a", "output": "b", "aliases": ["c"]}\n')
    (tmp_path / "t.csv").write_text("input,output,aliases\nx,y,z|w\n")
    mixed = load_split_files(tmp_path / "v.jsonl", tmp_path / "t.csv", "mixed", "Do:")
    assert mixed.val[0].aliases == ("c",) and mixed.test[0].aliases == ("z", "w")

    (tmp_path / "e.csv").write_text("input,output\nx,\n")
    with pytest.raises(TaskFileError, match=r"e.csv: line 2 \(test item 0\) has no output"):
        load_split_files(tmp_path / "v.jsonl", tmp_path / "e.csv", "bad", "Do:")


def test_a_bad_row_is_named_by_its_line_and_its_split(tmp_path):
    """A reader finds the row by its line in the file: JSONL and CSV errors give it, and the split."""
    rows = ["split,input,output,instruction", "val,a,b,Do:", "val,c,d,", "test,e,f,", "test,g,,"]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(TaskFileError, match=r"t.csv: line 5 \(test item 1\) has no output"):
        load_rows_task(tmp_path / "t.csv")
    lines = [
        '{"split": "val", "input": "a", "output": "b", "instruction": "Do:"}',
        '{"split": "test", "input": }',
    ]
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        TaskFileError, match=r"t.jsonl: line 2 is not valid JSON \(Expecting value, column 28\)"
    ):
        load_rows_task(tmp_path / "t.jsonl")


def test_a_row_with_more_cells_than_the_header_or_a_label_that_is_no_text_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text("split,input,output,instruction\nval,a,b,Do:\ntest,c,d,Do:,extra\n")
    with pytest.raises(TaskFileError, match="line 3 has 1 more cell"):
        load_rows_task(tmp_path / "t.csv")
    for value in ("5", "true", "[1]"):
        lines = ['{"split": "val", "input": "a", "output": "b", "instruction": "Do:"}']
        lines.append(f'{{"split": "test", "input": "c", "output": {value}}}')
        (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n")
        with pytest.raises(TaskFileError, match=r"line 2 \(test item 0\): output must be text"):
            load_rows_task(tmp_path / "t.jsonl")


def test_a_problem_every_item_shares_is_said_once_with_the_keys_an_item_has(tmp_path):
    """A file written with ``label`` for ``output`` and no ids (nine items) was refused in 27
    clauses, three per item; each problem is now said once, with its first places and a count."""
    items = [{"input": f"x{i}", "label": f"y{i}"} for i in range(9)]
    path = _write(tmp_path / "t.json", _task(val=items[:7], test=items[7:]))
    with pytest.raises(TaskFileError) as refused:
        load_task_file(path)
    line = str(refused.value)
    assert line.count(";") == 2, line  # three problems: id, output and label, each once
    assert "val.0.id, val.1.id and 7 more: Field required" in line
    assert "val.0.label, val.1.label and 7 more: not a key of an item (an item has id, input, output" in line
    # one item's problem keeps its one place
    with pytest.raises(TaskFileError, match=r"t.json: test.0.output: Field required$"):
        load_task_file(_write(path, _task(test=[{"id": "b", "input": "u"}])))


def test_files_as_spreadsheets_save_them_load(tmp_path):
    """A spreadsheet's "CSV UTF-8" begins with a byte-order mark, and in many locales separates
    cells with ';': both were refused as having no 'split' column."""
    rows = ["split,input,output,instruction", "val,France,Paris,The capital:", "test,Chile,Santiago,"]
    (tmp_path / "bom.csv").write_bytes("\ufeff".encode() + "\r\n".join(rows).encode())
    (tmp_path / "semi.csv").write_text("\n".join(row.replace(",", ";") for row in rows))
    for name in ("bom.csv", "semi.csv"):
        task = load_rows_task(tmp_path / name)
        assert task.instruction == "The capital:", name
        assert [(i.input, i.label) for i in (*task.val, *task.test)] == [
            ("France", "Paris"),
            ("Chile", "Santiago"),
        ]
    (tmp_path / "bom.json").write_bytes("\ufeff".encode() + json.dumps(_task()).encode())
    assert load_task_file(tmp_path / "bom.json").name == "toy"


def test_a_quoted_line_break_is_kept_and_an_answer_holding_one_is_refused(tmp_path):
    """A quoted CSV cell "Madrid<newline>X" was read as 'MadridX' (lines were split before the
    cells were); an answer with a line break could never be given (answers end at one)."""
    header = "split,input,output,instruction\nval,France,Paris,The capital:\n"
    (tmp_path / "input.csv").write_text(header + 'test,"Chile\nSouth America",Santiago,\n')
    assert load_rows_task(tmp_path / "input.csv").test[0].input == "Chile\nSouth America"
    (tmp_path / "answer.csv").write_text(header + 'test,Chile,"Santiago\nde Chile",\n')
    with pytest.raises(
        TaskFileError, match=r"answer.csv: line \d \(test item 0\): output: .*holds a line break"
    ):
        load_rows_task(tmp_path / "answer.csv")
    with pytest.raises(TaskFileError, match=r"test.0.aliases: .*holds a line break"):
        load_task_file(
            _write(
                tmp_path / "t.json",
                _task(test=[{"id": "b", "input": "u", "output": "v", "aliases": ["w\n"]}]),
            )
        )


@pytest.mark.parametrize("shape", ["jsonl", "json"])
@pytest.mark.parametrize("odd", [["val", "Peru", "Lima"], None, "Peru"])
def test_a_row_that_is_no_object_among_rows_with_a_split_is_refused(tmp_path, shape, odd):
    """A line ``["val","Peru","Lima"]`` or ``null`` among rows with a ``split`` was left out, so a
    run silently used fewer items than the file holds."""
    rows = [
        {"split": "val", "input": "a", "output": "b", "instruction": "Do:"},
        {"split": "val", "input": "c", "output": "d"},
        odd,
        {"split": "test", "input": "e", "output": "f"},
    ]
    if shape == "jsonl":
        (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
        place = "rows.jsonl: line 3"
    else:
        _write(tmp_path / "rows.json", rows)
        place = "rows.json: item 2"
    with pytest.raises(TaskFileError, match=rf"{place} is not an object \({re.escape(json.dumps(odd))}\)"):
        load_rows_task(tmp_path / f"rows.{shape}")


@pytest.mark.parametrize(
    ("field", "value", "refusal"),
    [
        ("aliases", 5, "aliases must be a list of text (or 'a|b'), not 5"),
        ("aliases", {"Paris": 1}, "aliases must be a list of text (or 'a|b'), not {'Paris': 1}"),
        ("aliases", ["Lima", 5], "aliases.1: Input should be a valid string"),
        ("image", 5, "image must be text (an image file or a suite entity), not 5"),
        ("entity", ["pe.png"], "entity must be text (an image file or a suite entity), not ['pe.png']"),
    ],
)
def test_a_rows_aliases_or_image_of_the_wrong_type_is_refused_as_in_a_task_json(
    tmp_path, field, value, refusal
):
    """``"aliases": 5`` and ``"image": 5`` ended in a TypeError, and ``"aliases": {"Paris": 1}``
    made Paris an accepted answer; a task's JSON file refuses all three, and so do rows now."""
    rows = [
        {"split": "val", "input": "Chile", "output": "Santiago", "instruction": "Do:"},
        {"split": "test", "input": "Peru", "output": "Lima", field: value},
    ]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    with pytest.raises(TaskFileError, match=rf"rows.jsonl: line 2 \(test item 0\): {re.escape(refusal)}$"):
        load_rows_task(tmp_path / "rows.jsonl")
    item = {"id": "b", "input": "Peru", "output": "Lima", field: value}
    with pytest.raises(TaskFileError, match=rf"test.0.{field}"):
        load_task_file(_write(tmp_path / "t.json", _task(test=[item])))
    # what rows have always held still reads: no aliases, 'a|b', a list, no picture
    for aliases in (None, "", "Lima city|Ciudad de Lima", ["Lima city"]):
        rows[1] = {"split": "test", "input": "Peru", "output": "Lima", "aliases": aliases, "image": None}
        (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
        assert load_rows_task(tmp_path / "rows.jsonl").test[0].entity is None


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path):
    """``split,input,output,instruction,output`` was read with the last ``output`` alone, silently."""
    (tmp_path / "t.csv").write_text("split,input,output,instruction,output\nval,a,b,Do:,x\ntest,c,d,,y\n")
    with pytest.raises(TaskFileError, match=r"t.csv: line 1: the column 'output' appears twice"):
        load_rows_task(tmp_path / "t.csv")
    # the spare empty columns a spreadsheet writes are no repeated column
    (tmp_path / "t.csv").write_text("split,input,output,instruction,,\nval,a,b,Do:,,\ntest,c,d,,,\n")
    assert [i.label for i in load_rows_task(tmp_path / "t.csv").test] == ["d"]


def test_a_csvs_rows_of_empty_cells_are_no_rows(tmp_path):
    """A spreadsheet's export ends in rows like ``,,,``: they were refused as "split must be val or
    test, not ''", though a CSV saved by a spreadsheet should read as it is."""
    rows = ["split,input,output,instruction", "val,a,b,Do:", "val,c,d,", "test,e,f,"]
    (tmp_path / "plain").mkdir()
    (tmp_path / "export").mkdir()
    (tmp_path / "plain" / "t.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "export" / "t.csv").write_text("\n".join([*rows[:3], ",,,", rows[3], ",,,", ", ,,"]) + "\n")
    plain, export = (
        load_rows_task(tmp_path / "plain" / "t.csv"),
        load_rows_task(tmp_path / "export" / "t.csv"),
    )
    assert export.fingerprint() == plain.fingerprint()
    assert [item.id for item in export.test] == ["test-0"]
    # a row with a cell is still a row, refused when it lacks the rest
    (tmp_path / "export" / "t.csv").write_text("\n".join([*rows, ",x,,"]) + "\n")
    with pytest.raises(TaskFileError, match=r"t.csv: split must be val or test, not '' \(line 5\)"):
        load_rows_task(tmp_path / "export" / "t.csv")


def test_a_numbered_id_is_kept_as_its_text_in_every_shape_and_id_0_is_not_replaced(tmp_path):
    """``"id": 0`` became ``val-0`` in a JSONL task, and ``"id": 7`` was refused in a task JSON
    ("Input should be a valid string") where JSONL took it."""
    rows = [
        {"split": "val", "id": 0, "input": "a", "output": "b", "instruction": "x:"},
        {"split": "val", "id": 7, "input": "c", "output": "d"},
        {"split": "test", "input": "e", "output": "f"},
    ]
    jsonl = tmp_path / "numbered.jsonl"
    jsonl.write_text("\n".join(json.dumps(row) for row in rows))
    task = load_task(str(jsonl))
    assert [item.id for item in task.val] == ["0", "7"] and [item.id for item in task.test] == ["test-0"]
    whole = {
        "name": "numbered",
        "instruction": "x:",
        "val": [{"id": 7, "input": "a", "output": "b"}],
        "test": [{"id": "q", "input": "c", "output": "d"}],
    }
    assert [item.id for item in load_task_file(_write(tmp_path / "whole.json", whole)).val] == ["7"]
    for odd in (1.5, True, [1]):
        rows[0]["id"] = odd
        jsonl.write_text("\n".join(json.dumps(row) for row in rows))
        with pytest.raises(TaskFileError, match=r"line 1 \(val item 0\): id: must be text or a whole number"):
            load_task(str(jsonl))


def test_a_csv_header_typed_with_capitals_or_spaces_names_the_columns(tmp_path):
    """`Split, Input, Output` as a spreadsheet user types it was refused as having no 'split'
    column; `Input` and `input` both given is one column twice."""
    rows = "\n".join(f"{'val' if k < 6 else 'test'}, thing {k}, label {k}" for k in range(8))
    path = tmp_path / "caps.csv"
    path.write_text("Split, Input ,OUTPUT\n" + rows + "\n")
    task = load_rows_task(path, instruction_of=lambda _name: "The label:")
    assert (len(task.val), len(task.test)) == (6, 2) and task.val[0].label == "label 0"
    path.write_text("split,Input,input,output\n")
    with pytest.raises(TaskFileError, match="the column 'input' appears twice"):
        load_rows_task(path, instruction_of=lambda _name: "The label:")


def test_spaces_around_an_instruction_drop_so_its_vector_is_read_at_its_last_character(tmp_path):
    path = tmp_path / "spaced.json"
    items = [{"id": f"i{k}", "input": f"thing {k}", "output": f"label {k}"} for k in range(4)]
    path.write_text(
        json.dumps({"name": "spaced", "instruction": "The next: \n", "val": items[:3], "test": items[3:]})
    )
    assert load_task_file(path).instruction == "The next:"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_misspelt_column_is_refused_and_a_datasets_own_column_said(tmp_path, suffix):
    """An ``alias`` column (for ``aliases``) was dropped without a word, and every alias with it:
    whole_label and exact credited none; a JSON task file refuses such a key."""
    rows = [
        {"split": "val", "input": "a", "output": "b", "alias": "c"},
        {"split": "test", "input": "d", "output": "e", "alias": "f", "instruction": "Do:"},
    ]
    path = tmp_path / f"t{suffix}"

    def write(rows):
        if suffix == ".csv":
            columns = list(dict.fromkeys(key for row in rows for key in row))
            lines = [",".join(columns), *(",".join(row.get(c, "") for c in columns) for row in rows)]
            path.write_text("\n".join(lines) + "\n")
        else:
            path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    write(rows)
    with pytest.raises(
        TaskFileError, match=r"column 'alias' is not one taskvec reads; did you mean 'aliases'"
    ):
        load_rows_task(path)
    write([{**{k: v for k, v in row.items() if k != "alias"}, "notes": "n"} for row in rows])
    with pytest.warns(UserWarning, match=r"column\(s\) 'notes' not read"):
        task = load_rows_task(path)
    assert [item.label for item in task.test] == ["e"]


def test_a_task_file_of_another_suffix_is_named_as_such(tmp_path):
    """``task.txt`` was read as JSON and refused as "not valid JSON", which says nothing of why."""
    from taskvec.tasks.registry import load_task

    (tmp_path / "task.txt").write_text("input,output\na,b\n")
    with pytest.raises(TaskFileError, match=r"task.txt: a task file is .json, .jsonl or .csv .*not .txt"):
        load_task(tmp_path / "task.txt")
