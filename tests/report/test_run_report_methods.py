"""A run's report.md says what its xBase and xPatch are under its specification: an ensemble's
xBase holds the demonstrations without the instruction, which the report did not say."""

from __future__ import annotations

import pytest

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.report.tables import run_report, styles_shown


@pytest.mark.parametrize(
    ("spec", "examples", "base", "patched"),
    [
        ("text-icl", 5, "5 text demonstrations and the query in one prompt", "the mean of the vectors of"),
        ("image-icl", 3, "3 image demonstrations and the query in one prompt", "(3 image demonstrations"),
        ("instruction", 5, "the instruction and the query in one prompt", "the instruction's vector"),
        (
            "ensemble",
            4,
            "4 text demonstrations and the query in one prompt (no instruction)",
            "the mean of the instruction's vector and",
        ),
    ],
)
def test_the_report_says_what_xbase_and_xpatch_are(spec, examples, base, patched):
    config = (
        ExperimentConfig.create(spec=spec, n_examples=examples)
        if spec != "instruction"
        else ExperimentConfig.create(spec=spec)
    )
    text = run_report(config, "layer selection `shared`", [])
    line = next(line for line in text.splitlines() if line.startswith("- xBase: "))
    assert line.startswith(f"- xBase: {base}; xPatch: ") and patched in line
    assert line.endswith("patched into the bare query; No Context: the bare query")


def test_the_report_names_the_pictures_it_showed():
    """Two runs apart only in ``--style`` had reports alike but for their numbers."""
    import pandas as pd

    rows = pd.DataFrame({"style": ["openmoji", "openmoji", "own files", None]})
    assert styles_shown(rows) == "`openmoji`, `own files`"
    assert styles_shown(rows.assign(style=None)) == ""
    config = ExperimentConfig.create(spec="image-icl", query="text")
    text = run_report(config, "layer selection `shared`", [], pictures=styles_shown(rows))
    assert "seeds [1, 2, 3]; pictures: `openmoji`, `own files`" in text
    assert "pictures:" not in run_report(config, "layer selection `shared`", [])
