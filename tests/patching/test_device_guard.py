"""A CPU-side guard against tensors made on the wrong device.

CI has no GPU, so a ``torch.arange(n)`` that should have been ``torch.arange(n, device=...)`` passes
every CPU test and crashes on CUDA ("index is on cpu, different from other tensors on cuda:0").
The guard runs the engine under a torch function mode that refuses any tensor factory
(``arange``, ``tensor``, ``empty``, ``zeros``, ...) called from taskvec's own code without a
``device``: on a CPU-only machine that is exactly the call that would make a CPU tensor beside
CUDA ones. Code outside taskvec (transformers, tokenisers) is left alone, and the results must
equal the unguarded run's and leave the public API on the CPU.

(A first idea, ``torch.set_default_device("meta")``, does not work as a guard: a CPU tensor
indexed by a meta index returns uninitialised memory instead of failing, so a stray device-less
``arange`` used as an index goes unnoticed.)

What it catches: a factory call without a device on any path the tests below run (extraction,
the fast and plain sweeps, patched generation, the analyses' logit lens), for the text LM and
every vision-language family. What it cannot: a device named wrongly on purpose
(``"cpu"`` where the model's device was meant, which only a GPU shows), tensors from numpy
(``from_numpy`` has no device argument), transfers between two real devices, and paths the tests
do not run.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from helpers.families import CASES
from helpers.tinyllm import tiny_llm
from helpers.tinyparts import image
from torch.overrides import TorchFunctionMode

import taskvec.patching.sweep as sweep_module
from taskvec.analysis.lens import PHASES, lens_top1, phase_masses
from taskvec.analysis.token_sets import TokenSets
from taskvec.models.adapter import ModelAdapter
from taskvec.patching.patch import Patch, generate_ids, generate_ids_under_patches, line_complete
from taskvec.patching.shared_prefix import generate_ids_after_prefixes
from taskvec.patching.sweep import sweep, sweep_naive
from taskvec.vectors.extract import last_token_states

FACTORIES = {
    torch.arange, torch.tensor, torch.empty, torch.zeros, torch.ones, torch.full, torch.rand,
    torch.randn, torch.randint, torch.randperm, torch.eye, torch.linspace, torch.scalar_tensor,
}  # fmt: skip


class DeviceLessTensor(AssertionError):
    """taskvec made a tensor without saying on which device."""


class _RefuseDeviceLessFactories(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            caller = sys._getframe(1)  # the Python frame that called the factory
            module = caller.f_globals.get("__name__", "")
            if module.startswith("taskvec."):
                raise DeviceLessTensor(
                    f"torch.{func.__name__} without a device at {caller.f_code.co_filename}:{caller.f_lineno}"
                )
        return func(*args, **kwargs)


@contextmanager
def device_guard() -> Iterator[None]:
    """Within the block, taskvec code that makes a tensor without a device raises."""
    with _RefuseDeviceLessFactories():
        yield


def _on_cpu(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" for t in tensors)


def _text_prompts() -> tuple[list[list], list[list]]:
    demos = "Q:France\nA:Paris\n\nQ:Spain\nA:Madrid\n\n"
    prompts = [[demos + "Q:Italy\nA:"], [demos + "Q:Peru and Chile\nA:"], [demos + "Q:Kenya\nA:"]]
    queries = [["Q:Italy\nA:"], ["Q:Peru and Chile\nA:"]]
    return prompts, queries


def _engine_results(adapter: ModelAdapter, prompts, queries) -> dict:
    """Every engine path, the way the protocol calls it; all results on the CPU."""
    layers = list(range(adapter.num_layers))
    states = last_token_states(adapter, prompts)  # [prompts, layers, hidden]
    vectors = states.mean(0)  # [layers, hidden]
    fast = sweep(adapter, queries, vectors, layers)
    naive = sweep_naive(adapter, queries, vectors, layers, batch_one=False)
    patch = Patch(layers[-1], vectors[-1])
    until = line_complete(adapter)
    answers = generate_ids(adapter, queries, patch, max_new_tokens=4, until=until)
    under = generate_ids_under_patches(adapter, queries, [None, patch], max_new_tokens=4, until=until)
    after = generate_ids_after_prefixes(adapter, [prompts[0][:1]], [[p] for p in prompts[:1]], 3)
    # the analyses' logit lens
    sets = TokenSets("guarded", {phase: (1, 2, 3) for phase in PHASES})
    masses = phase_masses(adapter, states, sets)
    top1 = lens_top1(adapter, states)
    assert _on_cpu(states, fast.patched, fast.clean, naive.patched, naive.clean, top1)
    return {
        "states": states,
        "fast": (fast.patched, fast.clean),
        "naive": (naive.patched, naive.clean),
        "answers": answers,
        "under": under,
        "after": after,
        "lens": (top1, masses),
    }


def _assert_same(guarded: dict, plain: dict) -> None:
    torch.testing.assert_close(guarded["states"], plain["states"], rtol=0, atol=0)
    for key in ("fast", "naive"):
        assert all(torch.equal(a, b) for a, b in zip(guarded[key], plain[key], strict=True))
    for key in ("answers", "under", "after"):
        assert guarded[key] == plain[key]
    assert torch.equal(guarded["lens"][0], plain["lens"][0]) and guarded["lens"][1].equals(plain["lens"][1])


def test_engine_makes_no_tensor_without_a_device_text_lm():
    adapter = tiny_llm("llama", layers=3)
    prompts, queries = _text_prompts()
    plain = _engine_results(adapter, prompts, queries)
    with device_guard():
        guarded = _engine_results(adapter, prompts, queries)
    _assert_same(guarded, plain)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_engine_makes_no_tensor_without_a_device_vlm(case):
    adapter = case.build()
    demos = ["Q:", image(1), "\nA:Paris\n\nQ:", image(2), "\nA:Madrid\n\n"]
    prompts = [[*demos, "Q:", image(3), "\nA:"], [*demos, "Q:", image(4), "\nA:"]]
    queries = [["Q:", image(5), "\nA:"], ["Q:", image(6), "\nA:"]]
    plain = _engine_results(adapter, prompts, queries)
    with device_guard():
        guarded = _engine_results(adapter, prompts, queries)
    _assert_same(guarded, plain)


def test_guard_catches_a_tensor_made_without_a_device(monkeypatch):
    """A copy of the sweep's ``_block_rows`` with its device left out (as it was before the GPU
    work), compiled in the engine module's namespace: the CPU run passes with it and gives the
    same tokens, the guarded run refuses it."""
    source = inspect.getsource(sweep_module._block_rows)
    planted = source.replace(", device=encoded.device", "")
    assert planted != source, "the engine function changed: plant the device-less call anew"
    namespace = dict(vars(sweep_module))
    exec(planted, namespace)
    adapter = tiny_llm("llama", layers=3)
    prompts, queries = _text_prompts()
    vectors = last_token_states(adapter, prompts).mean(0)
    layers = list(range(adapter.num_layers))
    expected = sweep(adapter, queries, vectors, layers)
    monkeypatch.setattr(sweep_module, "_block_rows", namespace["_block_rows"])
    on_cpu = sweep(adapter, queries, vectors, layers)  # unguarded: the CPU cannot tell
    assert torch.equal(on_cpu.patched, expected.patched)
    with pytest.raises(DeviceLessTensor, match=r"torch\.arange without a device"), device_guard():
        sweep(adapter, queries, vectors, layers)


@pytest.mark.slow
def test_engine_makes_no_tensor_without_a_device_embedded_vlm():
    from taskvec.models.registry import load_model
    from taskvec.tasks.images import load_image

    adapter = load_model("embedded-vlm-smollm2")
    pictures = [load_image(entity, "noto") for entity in ("1f1eb-1f1f7", "1f1ea-1f1f8", "1f1ee-1f1f9")]
    prompts = [["Q:", pictures[0], "\nA:Paris\n\nQ:", picture, "\nA:"] for picture in pictures[1:]]
    queries = [["Q:", picture, "\nA:"] for picture in pictures]
    plain = _engine_results(adapter, prompts, queries)
    with device_guard():
        guarded = _engine_results(adapter, prompts, queries)
    _assert_same(guarded, plain)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_token_count_is_the_encoded_length_without_the_models_device(case):
    """Batch planning counts tokens from the processor's own output (no transfer, no derived
    inputs); the count must be what ``encode`` gives."""
    adapter = case.build()
    two_images = ["Q:", image(2), "\nA:b\n\nQ:", image(3), "\nA:"]
    prompts = [["Q:", image(1), "\nA:"], ["Q:cat and dog\nA:"], two_images]
    for prompt in prompts:
        assert adapter.token_count(prompt) == int(adapter.encode([prompt]).attention_mask.sum())


def test_the_recognisers_accuracy_check_makes_no_tensor_without_a_device():
    """``classifier_accuracy`` compared predictions with a device-less ``torch.tensor`` of the
    truth and fed the encoder CPU pixels: right on the CPU, a crash beside a CUDA recogniser."""
    from torch import nn

    from taskvec.align.evaluate import classifier_accuracy
    from taskvec.models.vision.efficientnet_lite import EfficientNetLite0
    from taskvec.tasks import images as suite

    torch.manual_seed(0)
    encoder = EfficientNetLite0().eval()
    head = nn.Linear(encoder.num_features, len(suite.entities()))
    plain = classifier_accuracy(encoder, head, 32, styles=("noto",), domains=("flags",))
    with device_guard():
        guarded = classifier_accuracy(encoder, head, 32, styles=("noto",), domains=("flags",))
    assert guarded.equals(plain) and list(plain.index) == ["noto"] and list(plain.columns) == ["flags"]
