"""Run prompts, clean or with a task vector patched into their last token, and read the answer."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch

from taskvec.errors import ConfigError, VectorMismatchError
from taskvec.models.adapter import Encoded, ModelAdapter, model_call
from taskvec.models.batching import MemoryBudget, OnProgress, plan_batches, progress_from, token_counts
from taskvec.models.cache_keyword import cache_argument, cache_of
from taskvec.models.head import GreedyReader, greedy_head
from taskvec.patching.hooks import PatchMode, check_mode, patching_last_token
from taskvec.patching.kv_cache import cache_rows, keep_rows, run_prefix, unforkable_reason
from taskvec.prompts.template import Prompt

#: whether an answer, given its ids so far, is complete (its row then stops generating)
AnswerComplete = Callable[[list[int]], bool]


@dataclass(frozen=True)
class Patch:
    """Put ``vector`` into the output of decoder layer ``layer`` at the query's last token."""

    layer: int
    vector: torch.Tensor  # [hidden]
    mode: PatchMode = "replace"
    scale: float = 1.0

    def check(self, adapter: ModelAdapter) -> None:
        adapter.check_layer(self.layer)
        check_mode(self.mode, self.scale)
        if not isinstance(self.vector, torch.Tensor):  # e.g. a whole TaskVector, every layer's
            raise VectorMismatchError(
                f"a patch takes one layer's vector, a tensor [hidden], not a {type(self.vector).__name__}; "
                f"for a task vector, give vector.at({self.layer})"
            )
        if self.vector.ndim != 1 or self.vector.shape[0] != adapter.hidden_size:
            raise VectorMismatchError(
                f"vector of shape {tuple(self.vector.shape)} cannot be patched into {adapter.name}, "
                f"whose residual stream is {adapter.hidden_size} wide"
            )
        check_finite(self.vector, f"the vector patched at layer {self.layer}")
        if not math.isfinite(self.scale):
            raise VectorMismatchError(f"patch scale {self.scale} is not a finite number")


def check_finite(vectors: torch.Tensor, what: str = "the vector") -> None:
    """Refuse NaN or infinite values: patched in, they silently turn every answer into noise."""
    bad = int((~torch.isfinite(vectors)).sum())
    if bad:
        raise VectorMismatchError(
            f"{what} has {bad} NaN or infinite value(s) of {vectors.numel()}; it cannot be patched "
            "(re-extract it, or check the model's dtype for overflow)"
        )


def _check_answer_length(max_new_tokens: int) -> None:
    """An answer is at least one token: the first is read from the prompt's own forward pass."""
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens}")


@model_call
@torch.no_grad()
def generate_ids(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    patch: Patch | None = None,
    max_new_tokens: int = 1,
    budget: MemoryBudget | None = None,
    until: AnswerComplete | None = None,
    on_progress: OnProgress | None = None,
) -> list[list[int]]:
    """Greedy generation; the patch acts on the prompt's last token only (the paper's xPatch).
    Tokens are read with ``greedy_head`` (the exact argmax, without the float32 logits). An answer
    ends after ``max_new_tokens``, or earlier where ``until`` says it is complete (e.g.
    ``line_complete``): the same tokens, cut there. ``on_progress(done, total)`` is told the
    prompts answered after each batch."""
    _check_answer_length(max_new_tokens)
    if patch is not None:
        patch.check(adapter)
    budget = budget or MemoryBudget.for_model(adapter)
    lengths = token_counts(adapter, prompts)
    results: list[list[int]] = [[] for _ in prompts]
    done = 0

    def held(length: int) -> int:
        return budget.answer_row_tokens(length, max_new_tokens)

    for indices in plan_batches(lengths, budget.max_tokens(adapter), held=held):
        encoded = adapter.encode([prompts[i] for i in indices])
        with greedy_head(adapter.unembedding()) as head:
            with _patching_each(adapter, [patch], len(indices)):
                output = adapter.forward(encoded, use_cache=max_new_tokens > 1)
            answers = greedy_continue(adapter, head, encoded, output, max_new_tokens, until)
        for index, answer in zip(indices, answers, strict=True):
            results[index] = answer
        done += len(indices)
        if on_progress is not None:
            on_progress(done, len(prompts))
    return results


@model_call
@torch.no_grad()
def generate_ids_under_patches(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    patches: Sequence[Patch | None],
    max_new_tokens: int = 1,
    budget: MemoryBudget | None = None,
    until: AnswerComplete | None = None,
    on_progress: OnProgress | None = None,
) -> list[list[list[int]]]:
    """Greedy answers of every prompt under each patch (``None``: clean), ``[patch][prompt]``,
    ending as in ``generate_ids``; ``on_progress(done, total)`` is told the answers (prompt x
    patch) given after each batch.

    A patch changes the prompt's last token only, so everything before it is the same under every
    patch: it runs once per prompt into a KV cache, and each patch's row continues from there (the
    last token, then the answer), the rows of all patches in one batch. Several seeds' vectors, or
    a control and its patched run, cost one prompt forward instead of one each, and their answers
    share each decoding step. Families whose prefix sees the last token, and one-token prompts,
    run whole through ``generate_ids``, once per patch."""
    _check_answer_length(max_new_tokens)
    for patch in patches:
        if patch is not None:
            patch.check(adapter)
    budget = budget or MemoryBudget.for_model(adapter)
    lengths = token_counts(adapter, prompts)
    total = len(prompts) * len(patches)
    if not patches or not adapter.prefix_cache_is_exact or min(lengths, default=2) < 2:
        return [
            generate_ids(
                adapter,
                prompts,
                patch,
                max_new_tokens,
                budget,
                until,
                progress_from(on_progress, p * len(prompts), total),
            )
            for p, patch in enumerate(patches)
        ]
    results: list[list[list[int]]] = [[[] for _ in prompts] for _ in patches]

    def held(length: int) -> int:
        return budget.tokens_under_patches(length, len(patches), max_new_tokens)

    done = 0
    for indices in plan_batches(lengths, budget.max_tokens(adapter), held=held):
        batch = [prompts[i] for i in indices]
        answers = _answers_under_patches(adapter, batch, patches, max_new_tokens, budget, until)
        for v, variant in enumerate(answers):
            for index, answer in zip(indices, variant, strict=True):
                results[v][index] = answer
        done += len(indices) * len(patches)
        if on_progress is not None:
            on_progress(done, total)
    return results


def _answers_under_patches(
    adapter: ModelAdapter,
    prompts: list[Prompt],
    patches: Sequence[Patch | None],
    max_new_tokens: int,
    budget: MemoryBudget,
    until: AnswerComplete | None,
) -> list[list[list[int]]]:
    """One batch of ``generate_ids_under_patches``: the prefix once, then every patch's rows (patch
    by patch, each a fork of the prefix's cache rows) take their last token and answer together."""
    encoded = adapter.encode(prompts)
    prefix = run_prefix(adapter, encoded)
    if unforkable_reason(prefix, adapter.num_layers, encoded.batch_size):
        return [generate_ids(adapter, prompts, patch, max_new_tokens, budget, until) for patch in patches]
    n = encoded.batch_size
    index = torch.arange(n, device=encoded.device).repeat(len(patches))
    rows = adapter.rows(encoded, index)
    with greedy_head(adapter.unembedding()) as head:
        with _patching_each(adapter, patches, n):
            output = adapter.model(
                **adapter.last_token_inputs(rows),
                **cache_argument(cache_rows(prefix, index)),
                use_cache=True,
                logits_to_keep=1,
            )
        answers = greedy_continue(adapter, head, rows, output, max_new_tokens, until)
    return [answers[p * n : (p + 1) * n] for p in range(len(patches))]


@contextmanager
def _patching_each(adapter: ModelAdapter, patches: Sequence[Patch | None], rows: int) -> Iterator[None]:
    """``patches[p]`` on the last token of rows ``p * rows`` to ``(p + 1) * rows`` (``None``:
    those rows run clean); patches of one mode and scale share a hook per layer."""
    kinds: dict[tuple[PatchMode, float], dict[int, tuple[list, list]]] = {}
    device = adapter.device
    for p, patch in enumerate(patches):
        if patch is not None:
            by_layer = kinds.setdefault((patch.mode, patch.scale), {})
            patched_rows, values = by_layer.setdefault(patch.layer, ([], []))
            patched_rows.append(torch.arange(p * rows, (p + 1) * rows, device=device))
            values.append(patch.vector.to(device).expand(rows, -1))
    with ExitStack() as stack:
        for (mode, scale), by_layer in kinds.items():
            layers = {layer: (torch.cat(r), torch.cat(v)) for layer, (r, v) in by_layer.items()}
            stack.enter_context(patching_last_token(adapter.layers, layers, mode, scale))
        yield


def greedy_continue(
    adapter: ModelAdapter,
    head: GreedyReader,
    encoded: Encoded,
    output,
    max_new_tokens: int,
    until: AnswerComplete | None = None,
) -> list[list[int]]:
    """Each row's answer: the token ``head`` (a ``greedy_head`` reader) read from ``output``, the
    model's forward of ``encoded``, then each next greedy token, one cached step at a time, up to
    ``max_new_tokens``. A row whose answer is complete (``until``) stops there and leaves the
    batch with its cache rows, so later steps cost only the answers still going (a cache that
    cannot be forked keeps its rows; their answers end all the same)."""
    answers = [[token] for token in head.last()[:, -1].tolist()]
    complete = [until is not None and until(answer) for answer in answers]
    live = list(range(len(answers)))  # the answer each row of the batch continues
    cache = cache_of(output)
    for _ in range(max_new_tokens - 1):
        going = [row for row, a in enumerate(live) if not complete[a]]
        if not going:
            break
        if len(going) < len(live) and unforkable_reason(cache, adapter.num_layers, len(live)) is None:
            index = torch.tensor(going, device=encoded.device)
            encoded = adapter.rows(encoded, index)
            keep_rows(cache, index)  # in place: the rows let go are freed now, not at the batch's end
            live = [live[row] for row in going]
        next_ids = torch.tensor([[answers[a][-1]] for a in live], device=encoded.device)  # [rows, 1]
        encoded = adapter.grow(encoded, next_ids)
        step = adapter.last_token_inputs(encoded)
        output = adapter.model(**step, **cache_argument(cache), use_cache=True, logits_to_keep=1)
        cache = cache_of(output)
        for a, token in zip(live, head.last()[:, -1].tolist(), strict=True):
            if not complete[a]:
                answers[a].append(token)
                complete[a] = until is not None and until(answers[a])
    return answers


@model_call
def first_token_ids(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    patch: Patch | None = None,
    budget: MemoryBudget | None = None,
) -> list[int]:
    """The greedy first answer token of each prompt."""
    return [ids[0] for ids in generate_ids(adapter, prompts, patch, 1, budget)]


@model_call
def generate(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    patch: Patch | None = None,
    max_new_tokens: int = 1,
    stop_at_newline: bool = True,
    budget: MemoryBudget | None = None,
) -> list[str]:
    """Greedy answers as text (by default one line: generation stops at its end, the text is cut
    there)."""
    until = line_complete(adapter) if stop_at_newline else None
    ids = generate_ids(adapter, prompts, patch, max_new_tokens, budget, until)
    return [answer_text(adapter, answer, stop_at_newline) for answer in ids]


@model_call
def generate_under_patches(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    patches: Sequence[Patch | None],
    max_new_tokens: int = 1,
    stop_at_newline: bool = True,
    budget: MemoryBudget | None = None,
    on_progress: OnProgress | None = None,
) -> list[list[str]]:
    """Greedy answers as text under each patch (``None``: clean), ``[patch][prompt]``: a control
    and its patched runs, or several vectors, compared on the same prompts (each prompt's tokens
    before the patched one run once). ``on_progress(done, total)`` is told the answers (prompt x
    patch) given after each batch."""
    until = line_complete(adapter) if stop_at_newline else None
    runs = generate_ids_under_patches(adapter, prompts, patches, max_new_tokens, budget, until, on_progress)
    return [[answer_text(adapter, ids, stop_at_newline) for ids in run] for run in runs]


def answer_text(adapter: ModelAdapter, ids: Sequence[int], stop_at_newline: bool = True) -> str:
    """Generated ids as text, cut where the answer's line ends (answers are one line): what
    ``generate`` returns for them. Public so that code holding ids from ``generate_ids`` (e.g.
    ``bench/answers.py``, which checks that ending at the line gives the same lines) reads them
    as the package does."""
    text = adapter.decode(ids)
    end = answer_line_end(text) if stop_at_newline else None
    return text if end is None else text[:end]


def answer_line_end(text: str) -> int | None:
    """Where the answer's line ends in generated text: the first newline after its first
    character that is not a newline or space (those may open an answer); None while open."""
    start = len(text) - len(text.lstrip("\n "))
    end = text.find("\n", start)
    return None if end < 0 else end


def line_complete(adapter: ModelAdapter) -> AnswerComplete:
    """``until`` for one-line answers: complete once their line has ended. Cutting there keeps
    every line-based reading of the answer (``answer_text``, the first line the exact metric
    reads) what the full ``max_new_tokens`` would give."""
    return lambda ids: answer_line_end(adapter.decode(ids)) is not None


@model_call
def patch(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    vector: torch.Tensor,
    layer: int,
    mode: PatchMode = "replace",
    scale: float = 1.0,
    max_new_tokens: int = 1,
) -> list[str]:
    """Patch ``vector`` into the last token of each prompt at ``layer`` and generate."""
    return generate(adapter, prompts, Patch(layer, vector, mode, scale), max_new_tokens)
