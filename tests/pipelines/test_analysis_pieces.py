"""An analysis is made of resumable pieces: the states, phase curve and vector of each (task,
spec) are written to ``units/`` as they are computed, and the tables are assembled from the
pieces on disk. An interrupted analysis run again reuses the pieces it has, recomputes only the
missing or damaged ones, and writes the tables of an uninterrupted one, byte for byte."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from helpers.families.llava import build_llava
from safetensors import safe_open
from safetensors.torch import load_file, save

from taskvec.pipelines import analyze as analyze_module
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
    assert fresh.analysis is not None and finished_analysis(tiny_vlm.fingerprint, config, out, tables) is None
    write_analysis_report(fresh)
    again = finished_analysis(tiny_vlm.fingerprint, config, out, tables)
    assert again is not None and again.analysis is None  # read back: its summary is there
    assert set(again.tables) == set(tables) and again.layer == fresh.layer


def test_pieces_of_another_analysis_are_not_reused(tiny_vlm, tmp_path):
    first = analyze(tiny_vlm, AnalysisConfig.create(**OPTIONS), tmp_path / "a").folder.root
    piece = first / "units" / "food_color__text-icl.safetensors"
    assert load_file(piece)["states"].shape[0] == 4
    other = AnalysisConfig.create(**{**OPTIONS, "prompts": 3})
    analyze(tiny_vlm, other, tmp_path / "a", replace=True)
    assert load_file(piece)["states"].shape[0] == 3  # recomputed: three prompts' states now, not four


_SAVE_A_PIECE = """
import sys
import pandas as pd
import torch
from taskvec.analysis.lens import MASS
from taskvec.pipelines.analyze import _save_piece
from taskvec.storage.run_folder import RunFolder

curve = pd.DataFrame([[0.1, 0.2, 0.3]], columns=list(MASS.values()))
_save_piece(RunFolder(sys.argv[1]), "food_color", "text-icl", "abc", torch.ones(2, 1, 3), curve)
"""


def test_two_processes_write_the_same_piece_byte_for_byte(tmp_path):
    """safetensors writes several metadata entries in an order that changes from process to
    process; a piece keeps its identity, task and spec in one entry, so equal analyses give equal
    files."""
    pieces = []
    for name in ("a", "b", "c"):
        subprocess.run([sys.executable, "-c", _SAVE_A_PIECE, str(tmp_path / name)], check=True)
        pieces.append((tmp_path / name / "units" / "food_color__text-icl.safetensors").read_bytes())
    assert pieces[0] == pieces[1] == pieces[2]


def test_a_piece_an_older_taskvec_wrote_is_still_reused(tiny_vlm, tmp_path):
    """Before, a piece's identity, task and spec were three metadata entries: such a piece of the
    same analysis still counts, and one of another analysis does not."""
    config = AnalysisConfig.create(**OPTIONS)
    folder = analyze(tiny_vlm, config, tmp_path / "a").folder
    identity = folder.config()["config_hash"]
    path = folder.path("units", "food_color__text-icl.safetensors")
    tensors = load_file(path)
    older = {"identity": identity, "task": "food_color", "spec": "text-icl"}
    path.write_bytes(save(tensors, metadata=older))
    assert analyze_module._has_piece(folder, "food_color", "text-icl", identity)
    path.write_bytes(save(tensors, metadata={**older, "identity": "another"}))
    assert not analyze_module._has_piece(folder, "food_color", "text-icl", identity)


def test_a_piece_or_table_edited_by_hand_is_not_taken_as_the_analysiss(tiny_vlm, tmp_path):
    """A piece whose states were edited in place (sign flipped, its metadata kept) was reused, and
    the phase ranges and embeddings followed it; a complete analysis read back printed a
    decodings table edited by hand as its own. Each records its checksum."""
    config = AnalysisConfig.create(**OPTIONS)
    straight = write_analysis_report(analyze(tiny_vlm, config, tmp_path / "straight")).parent
    folder = analyze_module.RunFolder(straight)
    identity = folder.config()["config_hash"]
    path = folder.path("units", "food_color__text-icl.safetensors")
    written = path.read_bytes()
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata()
    tensors = load_file(path)
    path.write_bytes(save({**tensors, "states": -tensors["states"]}, metadata=meta))
    assert not analyze_module._has_piece(folder, "food_color", "text-icl", identity)
    path.write_bytes(written)
    assert analyze_module._has_piece(folder, "food_color", "text-icl", identity)

    tables = {"decodings_table": 0, "phase_ranges": None}
    assert finished_analysis(tiny_vlm.fingerprint, config, straight, tables) is not None
    decodings = straight / "tables" / "decodings_table.csv"
    truth = decodings.read_text()
    decodings.write_text(truth.replace("'", "' Paris", 1))
    assert finished_analysis(tiny_vlm.fingerprint, config, straight, tables) is None  # assembled again
    write_analysis_report(analyze(tiny_vlm, config, straight))
    assert decodings.read_text() == truth


def test_an_analysis_of_one_lens_prompt_saves_its_pieces(tiny_vlm, tmp_path):
    """One prompt's phase curve is a frame pandas may hold transposed; its piece is saved anyway."""
    config = AnalysisConfig.create(
        **{**OPTIONS, "tasks": ["food_color"], "specs": ["text-icl"], "lens_prompts": 1}
    )
    result = analyze(tiny_vlm, config, tmp_path / "one")
    piece = load_file(tmp_path / "one" / "units" / "food_color__text-icl.safetensors")
    assert piece["curve"].shape == (tiny_vlm.num_layers, 3) and result.folder.status()["state"] == "complete"


def test_an_analysis_of_one_task_says_it_has_no_baseline(tiny_vlm, tmp_path):
    """One task has no pair of different tasks: the summary gives the same-task similarity and says
    there is no baseline (it said "only one specification" with two, and printed nan), and calls
    the embedding's neighbour share what it is with one task."""
    config = AnalysisConfig.create(**{**OPTIONS, "tasks": ["food_color"]})
    summary = write_analysis_report(analyze(tiny_vlm, config, tmp_path / "one")).read_text()
    assert "same task across specifications" in summary and "no pair of different tasks" in summary
    assert "nan" not in summary and "only one specification" not in summary
    assert "one task: every neighbour is of it" in summary


def test_the_summary_counts_the_lens_prompts_among_the_prompts(tiny_vlm, tmp_path):
    """The logit lens reads the first ``lens_prompts`` of the ``prompts``: asked for more lens
    prompts than prompts, the summary said it put more prompts through the lens than it had."""
    config = AnalysisConfig.create(**{**OPTIONS, "tasks": ["food_color"], "prompts": 2, "lens_prompts": 5})
    summary = write_analysis_report(analyze(tiny_vlm, config, tmp_path / "lens")).read_text()
    assert "up to 2 test prompts per task and specification (2 through the full logit lens)" in summary


def test_an_analysis_of_one_vector_draws_no_similarity_plots(tiny_vlm, tmp_path):
    """One task and one specification give one vector: nothing to compare, and the two similarity
    plots were drawn empty (and listed among the files)."""
    config = AnalysisConfig.create(**{**OPTIONS, "tasks": ["food_color"], "specs": ["text-icl"]})
    summary = write_analysis_report(analyze(tiny_vlm, config, tmp_path / "one")).read_text()
    plots = sorted(p.name for p in (tmp_path / "one" / "plots").iterdir())
    assert plots and not [p for p in plots if p.startswith("similarity")]
    assert "similarity_" not in summary.split("## Files")[1]
