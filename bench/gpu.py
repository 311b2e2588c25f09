"""The GPU check: taskvec at the paper's model sizes, random weights built on the device itself.

    python -m bench.gpu --out gpu.json                  # LLaVA-1.5-7B, Idefics2-8B, Qwen2-VL-7B shapes
    python -m bench.gpu --models llava --loop-queries 30
    python -m bench.gpu --smoke                          # tiny shapes: the whole check in seconds (CPU too)

At the paper's sizes it needs CUDA (and says so, without it); ``--smoke`` runs on the CPU.

No hub is needed: each model is built from its config at the real shape (LLaVA-1.5-7B: CLIP
ViT-L/14-336 + Llama-2-7B; Idefics2-8B: SigLIP-so400m at 980 px, a perceiver of 64 latents,
Mistral-7B; Qwen2-VL-7B: its 675M ViT + Qwen2-7B) with random weights, directly on the device, and
its processor from parts (a byte-level tokenizer, the family's own image processor). Per model:

1. bfloat16: the all-layer sweep of ``--queries`` image queries (``Q:<image>\\nA:``) by taskvec
   (``taskvec.sweep``), the paper's loop (batch 1, one full forward per query and layer) and
   nnsight (one batched trace per layer, if installed); the floor, one plain batched forward of
   the same queries reading the last logits only; seconds, peak device memory against the weights
   plus twice the queries' KV cache, and item-for-item agreement with the loop.
2. float32 (the same weights cast): the loop against taskvec on ``--exact-queries`` queries (equal
   on every item is the target), then the float32 reference of every item: its greedy token and
   its top-2 logit gap. bfloat16 honesty: how often taskvec's and the loop's bfloat16 tokens
   differ from that reference, and the float32 gap of each disagreeing item.

The loop and nnsight may run on fewer queries than the sweep (``--loop-queries``); their times are
then scaled to all queries and marked "extrapolated". Each model's row is printed even if another
model fails. ``--cli`` also runs ``taskvec run`` end to end on a saved LLaVA-shape folder.
Needs transformers 5.23 and (for the nnsight peer) nnsight; runs offline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
from tokenizers import models as token_models
from transformers import PreTrainedTokenizerFast

from bench.common import nnsight_sweep, paper_loop
from taskvec.models.adapter import ModelAdapter
from taskvec.models.batching import MemoryBudget, token_counts
from taskvec.patching.sweep import SweepResult, sweep, sweep_logits
from taskvec.prompts.template import PAPER
from taskvec.vectors.extract import last_token_states

BIG_BUDGET = MemoryBudget(1 << 40)  # the device's memory is the limit here, not the planner's


# --- offline parts -------------------------------------------------------------------------------


def byte_tokenizer(specials: list[str], named: dict[str, str] | None = None, bos: bool = True):
    """A byte-level tokenizer with no merges (every byte a token) plus special tokens: the prompt's
    structure (``:`` its own token, images expanded by the processor) without any hub file."""
    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    core = Tokenizer(token_models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(["<s>", "</s>", "<pad>", *specials])
    if bos:
        core.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", core.token_to_id("<s>"))]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens=named,
    )
    tokenizer.padding_side = "left"
    return tokenizer


def random_image(seed: int, side: int) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (side, side, 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy(), "RGB")


def built_on(device: str, dtype: torch.dtype, make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``make()`` with every parameter created on ``device`` in ``dtype`` (no CPU copy of 7B
    weights), seeded."""
    previous = torch.get_default_dtype()
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return make().eval()
    finally:
        torch.set_default_dtype(previous)


def build_llava(device: str, dtype: torch.dtype, smoke: bool) -> ModelAdapter:
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

    from taskvec.models.families.llava import LlavaAdapter

    side = 28 if smoke else 336
    tokenizer = byte_tokenizer(["<image>"], {"image_token": "<image>"})
    processor = LlavaProcessor(
        image_processor=LlavaImageProcessorPil(
            size={"shortest_edge": side}, crop_size={"height": side, "width": side}
        ),
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    vision = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)
    text = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32)
    if smoke:
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
        text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4)
    config = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", image_size=side, patch_size=14, **vision),
        text_config=dict(model_type="llama", vocab_size=32064, max_position_embeddings=4096, **text),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
    )
    model = built_on(device, dtype, lambda: LlavaForConditionalGeneration(config))
    return LlavaAdapter.from_parts(model, processor, "llava-1.5-7b-shape" if not smoke else "llava-smoke")


def build_idefics2(device: str, dtype: torch.dtype, smoke: bool) -> ModelAdapter:
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration, Idefics2Processor
    from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

    from taskvec.models.families.idefics2 import Idefics2Adapter

    latents = 4 if smoke else 64
    tokenizer = byte_tokenizer(
        ["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
        {"image_token": "<image>", "image_boundary_token": "<fake_token_around_image>"},
    )
    tokenizer.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    processor = Idefics2Processor(
        image_processor=Idefics2ImageProcessorPil(
            size={"shortest_edge": 28 if smoke else 378, "longest_edge": 42 if smoke else 980},
            do_image_splitting=False,
        ),
        tokenizer=tokenizer,
        image_seq_len=latents,
    )
    vision = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16)
    hidden = 4096
    text = dict(hidden_size=hidden, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32)
    perceiver = dict(resampler_depth=3, resampler_n_heads=16, resampler_head_dim=96, num_key_value_heads=4)
    if smoke:
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
        hidden = 64
        text = dict(hidden_size=hidden, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4)
        perceiver = dict(resampler_depth=1, resampler_n_heads=2, resampler_head_dim=8, num_key_value_heads=1)
    config = Idefics2Config(
        vision_config=dict(image_size=42 if smoke else 980, patch_size=14, **vision),
        perceiver_config=dict(hidden_size=hidden, resampler_n_latents=latents, **perceiver),
        text_config=dict(
            model_type="mistral", vocab_size=32003, num_key_value_heads=8 if not smoke else 2, **text
        ),
        image_token_id=tokenizer.image_token_id,
    )
    model = built_on(device, dtype, lambda: Idefics2ForConditionalGeneration(config))
    return Idefics2Adapter.from_parts(
        model, processor, "idefics2-8b-shape" if not smoke else "idefics2-smoke"
    )


def build_qwen2_vl(device: str, dtype: torch.dtype, smoke: bool) -> ModelAdapter:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from taskvec.models.families.qwen2_vl import Qwen2VLAdapter
    from taskvec.models.vlm import without_video

    specials = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = byte_tokenizer(specials, bos=False)
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in specials}
    side = 56 if smoke else 336
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=side * side, max_pixels=side * side, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    processor = without_video(Qwen2VLProcessor, image_processor=image_processor, tokenizer=tokenizer)
    vision = dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4, hidden_size=3584)
    text = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28)
    sections = [16, 24, 24]
    if smoke:
        vision = dict(depth=2, embed_dim=32, num_heads=4, mlp_ratio=2, hidden_size=64)
        text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4)
        sections = [2, 3, 3]
    config = Qwen2VLConfig(
        vision_config=dict(patch_size=14, spatial_merge_size=2, temporal_patch_size=2, **vision),
        text_config=dict(
            vocab_size=152064,
            num_key_value_heads=4 if not smoke else 2,
            max_position_embeddings=32768,
            rope_parameters={"rope_type": "default", "mrope_section": sections, "rope_theta": 1e6},
            **text,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    model = built_on(device, dtype, lambda: Qwen2VLForConditionalGeneration(config))
    return Qwen2VLAdapter.from_parts(model, processor, "qwen2-vl-7b-shape" if not smoke else "qwen2-vl-smoke")


@dataclass(frozen=True)
class Shape:
    key: str
    build: Callable[[str, torch.dtype, bool], ModelAdapter]
    image_side: int  # the side of the random test pictures
    loop_queries: int  # queries the loop and nnsight run by default (the rest extrapolated)


SHAPES = {
    s.key: s
    for s in (
        Shape("llava", build_llava, 336, loop_queries=30),
        Shape("idefics2", build_idefics2, 378, loop_queries=8),
        Shape("qwen2_vl", build_qwen2_vl, 336, loop_queries=8),
    )
}


# --- the peers -----------------------------------------------------------------------------------


# --- measuring -----------------------------------------------------------------------------------


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    synchronize()
    start = time.perf_counter()
    value = fn()
    synchronize()
    return time.perf_counter() - start, value


def peak_gib(fn: Callable[[], object]) -> tuple[float | None, object]:
    """Peak device memory (GiB) while ``fn`` runs; None off CUDA."""
    if not torch.cuda.is_available():
        return None, fn()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    value = fn()
    synchronize()
    return torch.cuda.max_memory_allocated() / 2**30, value


def kv_cache_gib(adapter: ModelAdapter, lengths: list[int], dtype: torch.dtype) -> float:
    text = adapter.model.config.get_text_config()
    heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    per_token = 2 * adapter.num_layers * heads * head_dim * dtype.itemsize
    return per_token * sum(lengths) / 2**30


def agreement(a: SweepResult, b: SweepResult, n: int) -> dict:
    """Item-for-item equality of two sweeps on their first ``n`` queries (patched, clean)."""
    patched = (a.patched[:n] == b.patched[:n]).float().mean().item()
    clean = (a.clean[:n] == b.clean[:n]).float().mean().item()
    return {"patched": round(patched, 4), "clean": round(clean, 4)}


@dataclass
class Row:
    model: str
    facts: dict = field(default_factory=dict)
    error: str | None = None


def check_model(shape: Shape, args, device: str, row: Row) -> None:
    """Fills ``row`` step by step, so a later step that fails leaves the figures measured before it."""
    adapter = shape.build(device, torch.bfloat16, args.smoke)
    side = 28 if args.smoke and shape.key == "llava" else shape.image_side // (6 if args.smoke else 1)
    queries = [PAPER.query(random_image(i, side)) for i in range(args.queries)]
    demos = [(random_image(100 + i, side), f"answer {i}") for i in range(2)]
    extraction = [PAPER.icl(demos, random_image(200 + i, side)) for i in range(args.queries)]
    layers = list(range(adapter.num_layers))
    lengths = token_counts(adapter, queries)
    weights_gib = sum(p.numel() * p.element_size() for p in adapter.model.parameters()) / 2**30
    row.facts.update(
        model_name=adapter.name,
        layers=adapter.num_layers,
        hidden=adapter.hidden_size,
        vocab=adapter.vocab_size,
        queries=len(queries),
        query_tokens=max(lengths),
        weights_gib=round(weights_gib, 2),
        kv_cache_gib=round(kv_cache_gib(adapter, lengths, torch.bfloat16), 3),
    )
    vectors = last_token_states(adapter, extraction, BIG_BUDGET).mean(0)  # [layers, hidden]

    # bfloat16: warm-up calls first (the first call on a new shape pays for kernel selection)
    encoded = adapter.encode(queries)
    sweep(adapter, queries[:2], vectors, layers, BIG_BUDGET)
    adapter.forward(encoded)
    floor, _ = timed(lambda: adapter.forward(encoded))
    counting, _ = timed(lambda: token_counts(adapter, queries))
    encoding, _ = timed(lambda: adapter.encode(queries))
    peak, (seconds, fast) = peak_gib(
        lambda: timed(lambda: sweep(adapter, queries, vectors, layers, BIG_BUDGET))
    )
    again, _ = timed(lambda: sweep(adapter, queries, vectors, layers, BIG_BUDGET))
    # what a user gets without a budget: one sized to the GPU's free memory (``for_model``)
    row.facts["sized_budget_mb"] = MemoryBudget.for_model(adapter).megabytes
    row.facts["taskvec_sized_budget_s"] = round(timed(lambda: sweep(adapter, queries, vectors, layers))[0], 3)
    if args.profile:
        row.facts["sweep_profile"] = profile(lambda: sweep(adapter, queries, vectors, layers, BIG_BUDGET))
    loop_n = min(args.loop_queries or shape.loop_queries, len(queries))
    loop_seconds, loop = timed(lambda: paper_loop(adapter, queries[:loop_n], vectors, layers))
    scale = len(queries) / loop_n
    row.facts.update(
        floor_s=round(floor, 3),
        taskvec_s=[round(seconds, 3), round(again, 3)],
        of_which_token_counts_s=round(counting, 3),
        of_which_encode_s=round(encoding, 3),
        taskvec_over_floor=round(min(seconds, again) / floor, 2),
        peak_gib=None if peak is None else round(peak, 2),
        peak_target_gib=round(weights_gib + 2 * row.facts["kv_cache_gib"], 2),
        loop_s=round(loop_seconds * scale, 2),
        loop_queries=loop_n,
        loop_extrapolated=loop_n < len(queries),
        speedup_vs_loop=round(loop_seconds * scale / min(seconds, again), 1),
        agreement_with_loop_bf16=agreement(fast, loop, loop_n),
    )
    try:
        peer = None if args.no_nnsight else nnsight_sweep(adapter)
        if peer is None and not args.no_nnsight:
            print("nnsight is not installed (the `bench` extra): the nnsight peer is skipped", flush=True)
        if peer is not None:
            peer(queries[:2], vectors, layers)  # warm-up
            nn_seconds, traced = timed(lambda: peer(queries[:loop_n], vectors, layers))
            row.facts.update(
                nnsight_s=round(nn_seconds * scale, 2),
                nnsight_extrapolated=loop_n < len(queries),
                speedup_vs_nnsight=round(nn_seconds * scale / min(seconds, again), 1),
                nnsight_agreement_with_loop_bf16=agreement(traced, loop, loop_n),
            )
    except Exception as error:  # noqa: BLE001 - the peer failing must not hide taskvec's figures
        row.facts["nnsight_error"] = f"{type(error).__name__}: {error}"[:300]

    # float32: the same weights cast; exactness on a few queries, then the reference of every item
    adapter.model.float()
    exact_n = min(args.exact_queries, len(queries))
    loop32 = paper_loop(adapter, queries[:exact_n], vectors, layers)
    fast32 = sweep(adapter, queries[:exact_n], vectors, layers, BIG_BUDGET)
    row.facts.update(
        float32_sweep_equals_loop=agreement(fast32, loop32, exact_n), float32_exact_queries=exact_n
    )
    reference, gaps = float32_reference(adapter, queries, vectors, layers)
    row.facts["float32_sweep_equals_reference"] = agreement(fast32, reference, exact_n)
    row.facts["bfloat16_honesty"] = honesty(fast, loop, loop_n, reference, gaps)


def profile(fn: Callable[[], object], rows: int = 15) -> str:
    """The ops that took the most device (else CPU) time in one call of ``fn``: where the time over
    the floor goes."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with torch_profile(activities=activities) as prof:
        fn()
        synchronize()
    key = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=rows)
    print(table, flush=True)
    return table


@torch.no_grad()
def float32_reference(adapter: ModelAdapter, queries, vectors, layers) -> tuple[SweepResult, torch.Tensor]:
    """Greedy tokens and top-2 logit gaps ``[queries, layers + 1]`` (last column: clean) in float32,
    a few queries at a time (the logits of every row are held)."""
    tokens, clean, gaps = [], [], []
    for start in range(0, len(queries), 4):
        encoded = adapter.encode(queries[start : start + 4])
        patched_logits, clean_logits = sweep_logits(adapter, encoded, vectors[layers], layers)
        logits = torch.cat([patched_logits, clean_logits[:, None]], dim=1).float()  # [n, L + 1, vocab]
        top = logits.topk(2, dim=-1).values
        tokens.append(patched_logits.argmax(-1))
        clean.append(clean_logits.argmax(-1))
        gaps.append(top[..., 0] - top[..., 1])
    return SweepResult(list(layers), torch.cat(tokens), torch.cat(clean)), torch.cat(gaps)


def honesty(fast: SweepResult, loop: SweepResult, n: int, reference: SweepResult, gaps: torch.Tensor) -> dict:
    """How often bfloat16 tokens differ from the float32 reference, for taskvec (every query) and
    the loop (its queries), with the float32 top-2 gap of each disagreeing item."""

    def rate(result: SweepResult, count: int) -> tuple[float, list[float]]:
        tokens = torch.cat([result.patched[:count], result.clean[:count, None]], dim=1)
        truth = torch.cat([reference.patched[:count], reference.clean[:count, None]], dim=1)
        wrong = tokens != truth
        return round(wrong.float().mean().item(), 4), sorted(
            (round(g, 4) for g in gaps[:count][wrong].tolist()), reverse=True
        )

    fast_rate, fast_gaps = rate(fast, fast.patched.shape[0])
    loop_rate, loop_gaps = rate(loop, n)
    fast_on_loop_queries, _ = rate(fast, n)
    quantiles = torch.quantile(gaps.flatten().float(), torch.tensor([0.01, 0.1, 0.5, 0.9])).tolist()
    return {
        "taskvec_disagreement": fast_rate,
        "taskvec_disagreement_on_loop_queries": fast_on_loop_queries,
        "loop_disagreement": loop_rate,
        # the largest first: how sure float32 was where bfloat16 answered otherwise
        "taskvec_gaps_of_disagreements": fast_gaps[:40],
        "loop_gaps_of_disagreements": loop_gaps[:40],
        "gap_quantiles_1_10_50_90": [round(q, 4) for q in quantiles],
        "items": int(gaps.numel()),
    }


# --- the CLI end to end --------------------------------------------------------------------------


def check_cli(device: str, smoke: bool) -> Row:
    """``taskvec run`` on a saved LLaVA-shape folder (bfloat16), a built-in task on image queries."""
    row = Row("cli")
    with tempfile.TemporaryDirectory() as folder:
        adapter = build_llava(device, torch.bfloat16, smoke)
        started = time.perf_counter()
        adapter.model.save_pretrained(folder)
        adapter.processor.save_pretrained(folder)
        row.facts["save_s"] = round(time.perf_counter() - started, 1)
        del adapter
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        run_dir = Path(folder) / "run"
        # no --memory-budget-mb: the budget sized to the GPU is checked too
        command = [
            sys.executable, "-m", "taskvec.cli", "run", "--model", folder, "--device", device,
            "--dtype", "bfloat16", "--tasks", "country_capital", "--spec", "text-icl", "--query", "image",
            "--seed", "1", "--test-layers", "chosen", "--out", str(run_dir),
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"COLUMNS": "120"})
        row.facts["command"] = " ".join(command[1:]).replace(folder, "<saved LLaVA-1.5-7B-shape folder>")
        row.facts["seconds"] = round(time.perf_counter() - started, 1)
        row.facts["exit_code"] = done.returncode
        row.facts["stdout"] = done.stdout[-3000:]
        row.facts["stderr_tail"] = done.stderr[-800:]
        if (run_dir / "config.json").is_file():
            row.facts["run_model"] = json.loads((run_dir / "config.json").read_text()).get("model")
        if (run_dir / "status.json").is_file():  # the budget sized to the GPU, as recorded
            status = json.loads((run_dir / "status.json").read_text())
            row.facts["memory_budget_mb"] = status.get("memory_budget_mb")
        if done.returncode != 0:
            row.error = f"taskvec run exited {done.returncode}"
            return row
        # the same command again: the complete folder is read back without loading the model
        started = time.perf_counter()
        again = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"COLUMNS": "120"})
        row.facts["again_seconds"] = round(time.perf_counter() - started, 1)
        row.facts["again_read_back"] = "complete: read back, nothing computed" in again.stderr
        row.facts["again_loaded_weights"] = "Loading weights" in again.stderr
        if again.returncode != 0 or not row.facts["again_read_back"]:
            row.error = f"taskvec run again exited {again.returncode} and did not read the folder back"
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument(
        "--loop-queries",
        type=int,
        default=None,
        help="queries the loop and nnsight run (default: 30 LLaVA, 8 others)",
    )
    parser.add_argument("--exact-queries", type=int, default=4, help="float32 loop-vs-sweep queries")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes (runs on a CPU in seconds)")
    parser.add_argument("--no-nnsight", action="store_true")
    parser.add_argument("--profile", action="store_true", help="print where one sweep's time goes")
    parser.add_argument("--cli", action="store_true", help="also run `taskvec run` on a saved folder")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=None, help="write every figure as JSON here")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: no CUDA device here (torch.cuda.is_available() is False)")
    if not args.smoke and not args.device.startswith("cuda"):
        sys.exit(
            "bench.gpu at the paper's model sizes needs CUDA (7B-parameter models built on the device); "
            f"--device is {args.device}: --smoke runs the same check at tiny shapes on the CPU"
        )

    rows: list[Row] = []
    for key in args.models:
        started = time.perf_counter()
        row = Row(key)
        try:
            check_model(SHAPES[key], args, args.device, row)
        except Exception as error:  # noqa: BLE001 - a failing model must not hide the others' rows
            row.error = f"{type(error).__name__}: {error}"  # the figures measured before it are kept
            traceback.print_exc()
        row.facts["wall_s"] = round(time.perf_counter() - started, 1)
        shown = {name: value for name, value in row.facts.items() if name != "sweep_profile"}
        print(f"{key}: {json.dumps(shown)}" + (f" ERROR {row.error}" if row.error else ""), flush=True)
        rows.append(row)
        write_figures(args.out, rows)  # after each model: a run cut short keeps what it measured
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if args.cli:
        try:
            rows.append(check_cli(args.device, args.smoke))
        except Exception as error:  # noqa: BLE001
            rows.append(Row("cli", error=f"{type(error).__name__}: {error}"))
            traceback.print_exc()
        cli = rows[-1].facts
        print(
            f"cli: {cli.get('command')}\nexit {cli.get('exit_code')} after {cli.get('seconds')} s", flush=True
        )
        print(cli.get("stdout", ""), cli.get("stderr_tail", "") if rows[-1].error else "", flush=True)
    write_figures(args.out, rows)
    print_table(rows)
    if any(row.error for row in rows):
        sys.exit(1)


def write_figures(out: Path | None, rows: list[Row]) -> None:
    """Every figure so far as JSON at ``out`` (nothing without it), with the machine it ran on."""
    if out is None:
        return
    environment = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }
    payload = {"environment": environment, "rows": [row.__dict__ for row in rows]}
    out.write_text(json.dumps(payload, indent=1))


def print_table(rows: list[Row]) -> None:
    columns = [
        "model", "tokens/query", "floor s", "taskvec s", "x floor", "loop s", "x loop", "nnsight s",
        "x nnsight", "agree bf16 (patched/clean)", "f32 equal", "peak GiB (target)",
    ]  # fmt: skip
    print("\n| " + " | ".join(columns) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    for row in rows:
        f = row.facts
        if row.model == "cli" or "floor_s" not in f:
            continue
        agree = f["agreement_with_loop_bf16"]
        exact = f.get("float32_sweep_equals_loop")  # absent where the float32 stage failed
        equal = "-" if exact is None else f"{exact['patched']:.2f}/{exact['clean']:.2f}"
        print(
            f"| {f['model_name']} | {f['query_tokens']} | {f['floor_s']} | {min(f['taskvec_s'])} | "
            f"{f['taskvec_over_floor']} | {f['loop_s']}{'*' if f['loop_extrapolated'] else ''} | "
            f"{f['speedup_vs_loop']} | {f.get('nnsight_s', '-')} | {f.get('speedup_vs_nnsight', '-')} | "
            f"{agree['patched']:.3f}/{agree['clean']:.3f} | {equal} | "
            f"{f['peak_gib']} ({f['peak_target_gib']}) |"
        )
    for row in rows:
        if row.error:
            print(f"{row.model}: ERROR {row.error}")


if __name__ == "__main__":
    main()
