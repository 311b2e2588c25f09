"""The engine on a CUDA device (skipped without one; ``bench/gpu.py`` is the full check at the
paper's shapes). Every family's tiny model moves to the GPU; the fast paths must give the plain
paths' tokens there too, and results must come back on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers.families import CASES
from helpers.tinyllm import tiny_llm
from helpers.tinyparts import image

from taskvec.models.batching import GPU_SHARE, MemoryBudget, gpu_free_bytes
from taskvec.patching.patch import Patch, generate_ids, generate_ids_under_patches, line_complete
from taskvec.patching.sweep import sweep, sweep_naive
from taskvec.prompts.template import PAPER
from taskvec.vectors.extract import last_token_states

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _check_on_cuda(adapter, prompts, queries) -> None:
    adapter.model.to("cuda")
    assert adapter.device.type == "cuda"
    layers = list(range(adapter.num_layers))
    states = last_token_states(adapter, prompts)
    assert states.device.type == "cpu"
    vectors = states.mean(0)
    fast = sweep(adapter, queries, vectors, layers)
    naive = sweep_naive(adapter, queries, vectors, layers, batch_one=True)
    assert fast.patched.device.type == "cpu" and fast.clean.device.type == "cpu"
    assert torch.equal(fast.patched, naive.patched) and torch.equal(fast.clean, naive.clean)
    patch = Patch(layers[-1], vectors[-1])
    until = line_complete(adapter)
    alone = [generate_ids(adapter, queries, p, 4, until=until) for p in (None, patch)]
    assert generate_ids_under_patches(adapter, queries, [None, patch], 4, until=until) == alone


def test_text_lm_on_cuda():
    demos = "Q:France\nA:Paris\n\nQ:Spain\nA:Madrid\n\n"
    prompts = [[demos + "Q:Italy\nA:"], [demos + "Q:Peru\nA:"]]
    _check_on_cuda(tiny_llm("llama", layers=3), prompts, [["Q:Italy\nA:"], ["Q:Peru and Chile\nA:"]])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_family_on_cuda(case):
    adapter = case.build()
    try:
        prompts = [PAPER.icl([(image(1), "a"), (image(2), "b")], image(3 + i)) for i in range(2)]
        _check_on_cuda(adapter, prompts, [PAPER.query(image(5)), PAPER.query(image(6))])
    finally:
        adapter.model.to("cpu")  # the cached tiny model is shared with the CPU tests


def test_taskvec_run_on_a_saved_folder_on_cuda(tmp_path):
    adapter = next(case for case in CASES if case.model_type == "llava").build()
    adapter.model.save_pretrained(tmp_path / "model")
    adapter.processor.save_pretrained(tmp_path / "model")
    command = [
        sys.executable, "-m", "taskvec.cli", "run", "--model", str(tmp_path / "model"), "--device", "cuda",
        "-t", "country_capital", "--query", "image", "--seed", "1", "--layer", "0", "--layer", "1",
        "--test-layers", "chosen", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    model = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert model["numerics"] == "cuda"
    # given none, the run sized its budget to the GPU: most of its free memory, not a CPU's 1 GiB
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["memory_budget_mb"] > 1024


def test_the_budget_sized_to_a_gpu_is_its_share_of_the_free_memory():
    adapter = tiny_llm("llama", layers=3)
    adapter.model.to("cuda")
    sized = MemoryBudget.for_model(adapter).bytes
    expected = GPU_SHARE * gpu_free_bytes(adapter.device)
    assert sized == pytest.approx(expected, rel=0.01)


def test_the_embedded_vlm_computes_its_images_where_a_device_map_put_its_llm():
    """A device map places the LLM alone; the recogniser and projector, built on the CPU, follow
    it, and pixels meet them there."""
    from helpers.tinyllm import tiny_text_lm

    from taskvec.models.embedded.load import assemble
    from taskvec.models.embedded.model import EntityNameProjector
    from taskvec.models.vision.efficientnet_lite import EfficientNetLite0

    llm = tiny_text_lm("gemma3-hybrid")
    llm.model.to("cuda")  # what from_pretrained(device_map="cuda:0") does to the LLM alone
    names = ["France", "Peru", "dog", "cat"]
    projector = EntityNameProjector(len(names), llm.hidden_size, tokens_per_image=2, visual_rank=4)
    projector.set_name_table(
        llm.model.get_input_embeddings(), [llm.tokenizer(" " + n)["input_ids"][-2:] for n in names]
    )
    adapter = assemble(llm, EfficientNetLite0(), projector, "tiny-vlm", "test", 32)
    assert {p.device.type for p in adapter.model.parameters()} == {"cuda"}
    prompts = [PAPER.icl([(image(1), "a"), (image(2), "b")], image(3 + i)) for i in range(2)]
    _check_on_cuda(adapter, prompts, [PAPER.query(image(5)), PAPER.query(image(6))])
