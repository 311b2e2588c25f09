"""Two variants of a model side by side in the reproduction report (the embedded VLM with a frozen
and with a LoRA-tuned language model), rendered from the two folders' files alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from taskvec.report import reproduce

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reproduce-embedded-vlm"


@pytest.fixture
def two_folders(tmp_path) -> tuple[Path, Path]:
    """The committed frozen-LLM reproduction, and a copy of it posing as the tuned variant with a
    different Table 4 and Text ICL xBase."""
    frozen, tuned = tmp_path / "frozen", tmp_path / "tuned"
    for folder in (frozen, tuned):
        shutil.copytree(DOCS, folder, ignore=shutil.ignore_patterns("plots", "analysis"))
        context = json.loads((folder / "report_context.json").read_text())
        context.pop("compare_with", None)
        (folder / "report_context.json").write_text(json.dumps(context))
    config = json.loads((tuned / "config.json").read_text())
    config["model"]["name"] = "embedded-vlm-gemma3-lora"
    (tuned / "config.json").write_text(json.dumps(config))
    table4 = pd.read_csv(tuned / "tables" / "table4.csv", index_col=[0, 1])
    table4.loc[("noto", "LLM -> VLM xPatch"), "average"] = 0.123
    table4.to_csv(tuned / "tables" / "table4.csv")
    table3 = pd.read_csv(tuned / "tables" / "table3_noto_paper.csv", index_col=0)
    table3.loc["Text ICL xBase", "average"] = 0.456
    table3.to_csv(tuned / "tables" / "table3_noto_paper.csv")
    return frozen, tuned


def test_a_report_shows_the_other_variants_figures_and_claims_beside_its_own(two_folders):
    frozen, tuned = two_folders
    reproduce.compare_with(tuned, frozen)  # what taskvec report --compare-with does
    reproduce.render_report(tuned)
    assert json.loads((tuned / "report_context.json").read_text())["compare_with"] == "../frozen"
    summary = reproduce.variant_summary([reproduce.ReproductionFolder(f) for f in (tuned, frozen)])
    assert list(summary.columns) == ["embedded-vlm-gemma3-lora", "embedded-vlm-gemma3"]
    xbase = summary.loc[("Table 3, images in noto, paper", "Text ICL xBase")]
    assert xbase.tolist() == ["0.456", "0.054"]
    table4 = summary.loc[("Table 4, images in noto, paper", "LLM -> VLM xPatch")]
    assert table4.tolist() == ["0.123", "0.372"]
    assert not any("`" in part for label in summary.index for part in label)  # HTML shows cells as text
    recognition = summary.loc[("recognition", "mean strict, training styles")]
    assert recognition.iloc[1] == "0.957"  # the shipped weights' sidecar figures, openmoji left out
    report = (tuned / "report.md").read_text()
    section = report.split("## Both embedded variants side by side")[1].split("\n## ")[0]
    assert "embedded-vlm-gemma3-lora: held" in section and "embedded-vlm-gemma3: held" in section
    assert "0.123" in section
    # the report without a variant has no such section
    reproduce.render_report(frozen)
    assert "side by side" not in (frozen / "report.md").read_text()
