"""Report tables in Markdown: labels of several levels as columns and headers, not tuples."""

import re

import pandas as pd

from taskvec.storage.markdown import markdown_table, write_table


def test_row_levels_become_columns_and_column_levels_join():
    rows = pd.MultiIndex.from_tuples([("noto", "VLM"), ("openmoji", "LLM")], names=["style", "vectors"])
    columns = pd.MultiIndex.from_tuples([("country_capital", "text-icl"), ("country_capital", "image-icl")])
    frame = pd.DataFrame([[0.5, 0.25], [0.75, 1.0]], index=rows, columns=columns)
    header, rule, first, second = markdown_table(frame).splitlines()
    cells = [cell.strip() for cell in header.strip("|").split("|")]
    assert cells == ["style", "vectors", "country_capital / text-icl", "country_capital / image-icl"]
    assert [c.strip() for c in first.strip("|").split("|")] == ["noto", "VLM", "0.5", "0.25"]
    assert "(" not in second and rule.count("|") == 5


def test_unnamed_levels_get_empty_headers_and_plain_frames_print_as_pandas_does():
    rows = pd.MultiIndex.from_tuples([("a", "b")])
    text = markdown_table(pd.DataFrame({"x": [1]}, index=rows))
    assert "('a', 'b')" not in text and "| a " in text
    plain = pd.DataFrame({"x": [1, 2]}, index=pd.Index(["r", "s"], name="row"))
    assert markdown_table(plain) == plain.to_markdown()
    assert markdown_table(plain, index=False) == plain.to_markdown(index=False)


def test_write_table_puts_the_markdown_beside_the_csv(tmp_path):
    frame = pd.DataFrame({"accuracy": [0.5]}, index=pd.MultiIndex.from_tuples([("noto", "xPatch")]))
    markdown = write_table(tmp_path, "t", frame)
    assert (tmp_path / "tables" / "t.md").read_text() == markdown + "\n"
    back = pd.read_csv(tmp_path / "tables" / "t.csv", index_col=[0, 1])
    assert back.loc[("noto", "xPatch"), "accuracy"] == 0.5
    assert not list((tmp_path / "tables").glob(".*"))  # no temporary file left behind


def test_formatted_cells_stay_as_written_on_the_right_and_a_missing_number_is_empty():
    frame = pd.DataFrame(
        {
            "xPatch": ["0.10", "0.37 ± 0.02"],
            "n": [0.5, float("nan")],
            "note": ["x", "y"],
            "flags": ["", "1.000"],
        },
        index=pd.Index(["a", "b"], name="task"),
    )
    header, rule, first, second = markdown_table(frame).splitlines()
    assert [c.strip() for c in first.strip("|").split("|")] == ["a", "0.10", "0.5", "x", ""]  # not 0.1
    assert [c.strip() for c in second.strip("|").split("|")] == [
        "b",
        "0.37 ± 0.02",
        "",
        "y",
        "1.000",
    ]  # not nan
    sides = ["left" if c.startswith(":") else "right" for c in rule.strip("|").split("|")]
    assert sides == ["left", "right", "right", "left", "right"]  # an empty cell leaves a column numeric


def test_a_half_rounds_the_same_way_however_summation_left_it():
    """0.145 summed to 0.14500000000000002 read 0.15 in a run's table and 0.14 in `taskvec runs`
    (rounded to 6 places first); 0.085 left at 0.08499999999999999 and 0.085 apart too. One rule
    now, on the value's decimals: a half goes to the even digit."""
    import pandas as pd

    from taskvec.cli import _cell
    from taskvec.report.tables import mean_std_cells
    from taskvec.storage.markdown import fixed

    halves = ((0.14500000000000002, "0.14"), (0.1449999999, "0.14"), (0.08499999999999999, "0.08"))
    for value, shown in halves:
        assert fixed(value) == shown == _cell(round(value, 6))
        cells = mean_std_cells(pd.DataFrame({"x": [value]}), pd.DataFrame({"x": [0.005000000000000003]}))
        assert cells.loc[0, "x"] == f"{shown} ± 0.00"  # 0.005: a half, to the even 0
    assert fixed(0.135) == "0.14" and fixed(0.125) == "0.12" and fixed(-0.125) == "-0.12"
    assert fixed(0.25, sign=True) == "+0.25" and fixed(0.1234, 3) == "0.123"
    assert fixed(0.1449) == "0.14" and fixed(0.1451) == "0.15"  # not halves
    assert fixed(-0.004) == "0.00" and fixed(-0.004, sign=True) == "+0.00"  # no negative zero


def test_a_pipe_in_a_cell_or_label_stays_in_its_cell():
    """A logit-lens cell ``'<|endoftext|>', ' B'`` ended at the first ``|`` when rendered, and
    the other tokens were lost; an answer ``dollar | pipe`` moved into the next column."""
    import markdown

    frame = pd.DataFrame(
        {"decodings": ["'<|endoftext|>', ' B'", "' Paris'"], "score": [0.5, 1.0]},
        index=pd.Index(["a|b", "c"], name="task"),
    )
    html = markdown.markdown(markdown_table(frame), extensions=["tables"])
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert cells[:3] == ["a|b", "'&lt;|endoftext|&gt;', ' B'", "0.5"]
    assert frame.loc["a|b", "decodings"] == "'<|endoftext|>', ' B'"  # the caller's frame as it was
