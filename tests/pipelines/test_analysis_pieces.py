"""An analysis is made of resumable pieces: the states, phase curve and vector of each (task,
spec) are written to ``units/`` as they are computed, and the tables are assembled from the
pieces on disk. An interrupted analysis run again reuses the pieces it has, recomputes only the
missing or damaged ones, and writes the tables of an uninterrupted one, byte for byte."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers.families.llava import build_llava
from safetensors.torch import load_file

from taskvec.pipelines.analyze import AnalysisConfig, analyze, finished_analysis
from taskvec.report.analysis import write_analysis_report

OPTIONS = dict(
    model="tiny-llava",
    tasks=["food_color", "animal_young"],
    specs=["text-icl", "instruction"],
    template="paper",
    n_examples=2,
    prompts=4,
    lens_prompts=2,
    extraction_prompts=3,
    top_k=3,
    embeddings=["pca"],
)


@pytest.fixture(scope="module")
def tiny_vlm():
    return build_llava.__wrapped__()  # the family tests' tiny LLaVA, a fresh (uncached) instance


def _tables(root) -> dict[str, bytes]:
    files = sorted((root / "tables").glob("*"))
    return {p.name: p.read_bytes() for p in files if p.suffix in {".csv", ".md"}}


def test_an_interrupted_analysis_reuses_its_pieces_and_writes_the_same_tables(tiny_vlm, tmp_path):
    config = AnalysisConfig.create(**OPTIONS)
    straight = write_analysis_report(analyze(tiny_vlm, config, tmp_path / "straight")).parent
    pieces = sorted(p.name for p in (straight / "units").glob("*.safetensors"))
    assert pieces == [
        "animal_young__instruction.safetensors",
        "animal_young__text-icl.safetensors",
        "food_color__instruction.safetensors",
        "food_color__text-icl.safetensors",
    ]

    # what a kill leaves: some pieces on disk, one missing, one damaged, no tables, status running
    cut = tmp_path / "cut"
    shutil.copytree(straight, cut)
    shutil.rmtree(cut / "tables")
    (cut / "units" / pieces[0]).unlink()
    (cut / "units" / pieces[1]).write_bytes(b"half a file")
    status = json.loads((cut / "status.json").read_text())
    (cut / "status.json").write_text(json.dumps({**status, "state": "running"}))
    kept = {name: (cut / "units" / name).stat().st_mtime_ns for name in pieces[2:]}

    resumed = write_analysis_report(analyze(tiny_vlm, config, cut)).parent
    assert {name: (cut / "units" / name).stat().st_mtime_ns for name in pieces[2:]} == kept
    for name in pieces[:2]:  # recomputed, as they were
        got, expected = load_file(resumed / "units" / name), load_file(straight / "units" / name)
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[key], expected[key]) for key in expected)
    assert _tables(resumed) == _tables(straight) and len(_tables(straight)) > 5
    assert (resumed / "summary.md").read_bytes() == (straight / "summary.md").read_bytes()


def test_a_complete_analysis_without_its_summary_is_not_read_back(tiny_vlm, tmp_path):
    """A stop between the analysis and its summary: the folder is complete, but a reproduction
    assembles it again from its pieces (no forward pass) so that its summary can be written."""
    config = AnalysisConfig.create(**OPTIONS)
    out = tmp_path / "a"
    fresh = analyze(tiny_vlm, config, out)
    tables = {"decodings_table": 0, "phase_ranges": None}
    assert fresh.analysis is not None and finished_analysis(tiny_vlm, config, out, tables) is None
    write_analysis_report(fresh)
    again = finished_analysis(tiny_vlm, config, out, tables)
    assert again is not None and again.analysis is None  # read back: its summary is there
    assert set(again.tables) == set(tables) and again.layer == fresh.layer


def test_pieces_of_another_analysis_are_not_reused(tiny_vlm, tmp_path):
    first = analyze(tiny_vlm, AnalysisConfig.create(**OPTIONS), tmp_path / "a").folder.root
    piece = first / "units" / "food_color__text-icl.safetensors"
    assert load_file(piece)["states"].shape[0] == 4
    other = AnalysisConfig.create(**{**OPTIONS, "prompts": 3})
    analyze(tiny_vlm, other, tmp_path / "a", replace=True)
    assert load_file(piece)["states"].shape[0] == 3  # recomputed: three prompts' states now, not four
