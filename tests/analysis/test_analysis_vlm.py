"""The image path on a tiny random LLaVA (tests/helpers/families/llava.py): image-ICL prompts of
the real task images go through the same analyses as text and produce well-formed output. The
model is random, so nothing here is about what it decodes."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.families.llava import build_llava

from taskvec.analysis import collect, lens_logits, lens_probs
from taskvec.analysis import lens as lens_module
from taskvec.analysis.lens import MASS, decode_vector, phase_masses, vector_decodings
from taskvec.analysis.token_sets import TokenSets
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts
from taskvec.models.families.llava import LlavaAdapter
from taskvec.pipelines.analyze import AnalysisConfig, analyze
from taskvec.prompts.template import PAPER
from taskvec.report.analysis import write_analysis_report
from taskvec.tasks.registry import load_task
from taskvec.vectors.extract import last_token_states

SPECS = ["text-icl", "image-icl", "instruction"]


@pytest.fixture(scope="module")
def tiny_vlm() -> LlavaAdapter:
    return build_llava.__wrapped__()  # the family tests' tiny LLaVA, a fresh (uncached) instance


def test_logit_lens_at_the_last_layer_is_the_vlms_own_logits(tiny_vlm):
    task = load_task("food_color")
    got = collect(tiny_vlm, task, "image-icl", PAPER, n_examples=2, prompts=2, extraction_prompts=2)
    unit = UnitPrompts(task, ExperimentConfig(spec="image-icl", query="image", n_examples=2), seed=1)
    prompts = unit.test_base[:2]
    assert all(any(not isinstance(s, str) for s in p) for p in prompts)  # they hold images
    with torch.no_grad():
        own = tiny_vlm.forward(tiny_vlm.encode(prompts)).logits[:, -1].float()
    torch.testing.assert_close(lens_logits(tiny_vlm, got.states[:, -1]), own, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.states, last_token_states(tiny_vlm, prompts))


def test_lens_read_in_chunks_of_states_gives_each_prompts_own_distribution(tiny_vlm, monkeypatch):
    """Phase masses and vector decodings read many states per pass over the head; chunks that
    cut prompts and vectors apart give what one prompt's (one vector's) softmax gives."""
    generator = torch.Generator().manual_seed(0)
    states = 3 * torch.randn(4, tiny_vlm.num_layers, tiny_vlm.hidden_size, generator=generator)
    sets = TokenSets("t", {"input": (1, 5), "task": (7,), "answer": (2, 3, 11)})
    monkeypatch.setattr(lens_module, "LENS_CHUNK_BYTES", 3 * 4 * tiny_vlm.vocab_size)  # 3 states
    masses = phase_masses(tiny_vlm, states, sets)
    assert len(masses) == 4 * tiny_vlm.num_layers
    for prompt in range(4):
        probs = lens_probs(tiny_vlm, states[prompt])  # [layers, vocab]
        got = masses[masses["prompt"] == prompt].sort_values("layer")
        assert got["layer"].tolist() == list(range(tiny_vlm.num_layers))
        for phase, ids in sets.ids.items():
            expected = probs[:, list(ids)].sum(-1).numpy()
            np.testing.assert_allclose(got[MASS[phase]].to_numpy(), expected, rtol=1e-5, atol=1e-7)

    vectors = {("t", f"spec{i}"): states[i] for i in range(4)}
    decodings = vector_decodings(tiny_vlm, vectors, layer=1, k=3)
    for i in range(4):
        one = decode_vector(tiny_vlm, states[i, 1], k=3)
        got = decodings[decodings["spec"] == f"spec{i}"].reset_index(drop=True)
        assert got["token_id"].tolist() == lens_probs(tiny_vlm, states[i, 1]).topk(3).indices.tolist()
        assert got["token_id"].tolist() == one["token_id"].tolist()
        np.testing.assert_allclose(got["prob"].to_numpy(), one["prob"].to_numpy(), rtol=1e-5)


def test_analyze_runs_text_image_and_instruction_specs(tiny_vlm, tmp_path):
    config = AnalysisConfig.create(
        model="tiny-llava",
        tasks=["food_color", "animal_young"],
        template="paper",
        n_examples=2,
        prompts=4,
        lens_prompts=2,
        extraction_prompts=3,
        top_k=3,
        embeddings=["pca", "tsne"],
    )
    result = analyze(tiny_vlm, config, tmp_path / "analysis")
    write_analysis_report(result)  # as `taskvec analyze` does
    folder = result.folder.root
    layers = tiny_vlm.num_layers
    assert json.loads((folder / "status.json").read_text())["state"] == "complete"
    assert json.loads((folder / "config.json").read_text())["specs"] == SPECS  # image ICL by default

    states = {(s.task, s.spec): s.states for s in result.states}
    assert all(block.shape == (4, layers, tiny_vlm.hidden_size) for block in states.values())
    # image and text demonstrations of the same items give different delimiter states
    assert not torch.allclose(states[("food_color", "image-icl")], states[("food_color", "text-icl")])

    curves = result.tables["phase_curves"]
    assert len(curves) == 2 * 3 * layers
    masses = curves[list(MASS.values())]
    assert ((masses >= 0) & (masses <= 1 + 1e-6)).all().all()
    assert (masses.sum(axis=1) <= 1 + 1e-5).all()

    decodings = result.tables["decodings_table"]
    assert list(decodings.columns) == SPECS and list(decodings.index) == ["food_color", "animal_young"]
    assert len(result.tables["decodings"]) == 2 * 3 * 3

    matrix = result.tables["similarity"]
    assert matrix.shape == (6, 6)
    np.testing.assert_allclose(np.diag(matrix.to_numpy()), 1.0, atol=1e-5)
    by_layer = result.tables["similarity_by_layer"]
    assert list(by_layer.index) == list(range(layers))
    assert by_layer[["same_task", "same_spec", "different_both", "random_pair"]].notna().all().all()

    top1 = pd.read_csv(folder / "tables" / "top1.csv", keep_default_na=False)
    assert set(top1["spec"]) == set(SPECS) and len(top1) == 2 * 3 * 4 * len(set(top1["layer"]))
    for method in ("pca", "tsne"):
        frame = pd.read_csv(folder / "tables" / f"embedding_{method}.csv")
        assert len(frame) == 2 * 3 * 4 and np.isfinite(frame[["x", "y"]].to_numpy()).all()
    for plot in (
        "phases",
        "top1_image-icl",
        "similarity_by_layer",
        "embedding_tsne",
        f"similarity_layer{result.layer}",
    ):
        assert (folder / "plots" / f"{plot}.png").is_file()
    summary = (folder / "summary.md").read_text()
    assert "image-icl" in summary and f"layer **{result.layer}**" in summary
