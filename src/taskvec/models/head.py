"""The greedy next token at bfloat16 speed, exactly.

Everything the protocol reads from the model is a greedy token: the argmax of the next-token
logits. For a large vocabulary the unembedding dominates a one-token step (Gemma 3: 262k x 640,
more multiply-adds than its 18 decoder layers), and on a CPU with bfloat16 dot products a
bfloat16 matmul runs about three times faster than a float32 one. ``greedy_head`` uses it without
giving up exactness:

1. bfloat16 logits of every token (products summed in float32, the result rounded to bfloat16);
2. a bound on their error, per row: writing ``h~``, ``w~`` for the bfloat16 copies,
   ``|h.w - h~.w~| <= ||h~|| ||w - w~|| + ||h - h~|| ||w~|| + ||h - h~|| ||w - w~||`` (norms of
   the rounding residues, measured: the hidden row's exactly, the weight's as its largest over
   tokens), plus float32 summation (``2n 2^-24 ||h~|| ||w~||``) and the rounding of the result
   (``2^-7`` of its size, enough for truncation); we allow ``SAFETY = 2`` times that. On Gemma 3
   it is about 1.5 logits, a fifth of the Cauchy-Schwarz ``3u ||h|| max ||w||`` bound;
3. float32 logits of the few tokens whose bfloat16 logit lies within twice the bound of the best
   (on Gemma 3 the median is one token; the true argmax is always among them);
4. the argmax among those (ties go to the lowest token id, as with ``torch.argmax``).

Inside the block the unembedding returns a placeholder of width 1 instead of logits; the ids are
read from the context object. Where the screen cannot be trusted (weights not float32, not on the
CPU, or a backend that does not accumulate bfloat16 products in float32) it computes the logits
through the module's own forward (with whatever wraps it: accelerate's hooks bring offloaded
weights in) and takes their argmax, so the answer is the same either way. A head with forward
hooks of its own runs as it is, hooks and all, and the ids are the argmax of what they return.

``watching_head`` lets a caller see the rows the head computes logits for, and by which path,
without reaching into these internals (the benchmarks count and capture them through it).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from taskvec.models.adapter import COMPUTING

#: how many times the rounding bound of a bfloat16 logit the screen allows for
SAFETY = 2.0
#: relative error of a float32 result that bfloat16 rounds (2^-8) or truncates (2^-7)
RESULT_ROUNDING = 2.0**-7
#: rows screened at once (bounds the bfloat16 logits held: rows x vocabulary)
CHUNK_ROWS = 128
#: candidates looked for among the top-k bfloat16 logits before falling back to a full scan
TOP_K = 64
#: candidates whose float32 weight rows the exact pass gathers at a time: a chunk's candidates can
#: be most of the vocabulary (a row patched far from the model's own states), and gathered at
#: once they were a float32 copy of the head that no memory budget counts (113 MB for SmolLM2)
EXACT_SLICE = 1024


class GreedyReader:
    """The argmax token ids of every call of the unembedding inside ``greedy_head``."""

    def __init__(self) -> None:
        self.calls: list[torch.Tensor] = []

    def last(self) -> torch.Tensor:
        """Ids of the most recent call, shaped like its input without the hidden dimension."""
        if not self.calls:
            raise RuntimeError("the unembedding has not run inside greedy_head")
        return self.calls[-1]


@contextmanager
def greedy_head(head: nn.Module) -> Iterator[GreedyReader]:
    """Within the block, ``head`` (the model's unembedding) records exact argmax ids instead of
    returning logits; its output is a ``[..., 1]`` placeholder that must not be read. A head with
    forward hooks (a researcher's logit bias, a probe reading the logits) runs as it is, and the
    ids are the argmax of what its hooks return: with its forward replaced, they were skipped (or
    indexed the placeholder)."""
    with COMPUTING:  # the head's forward is shared: another thread's call must not meet this one's
        yield from _greedy(head)


def _greedy(head: nn.Module) -> Iterator[GreedyReader]:
    """``greedy_head``'s block, ``COMPUTING`` held."""
    reader = GreedyReader()
    if head._forward_hooks:
        with _reading_hooked(head, reader):
            yield reader
        return
    screen = head_screen(head)
    own_forward = _own_forward(head)

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        rows = hidden.reshape(-1, hidden.shape[-1])
        for watcher in _WATCHERS.get(head, ()):
            watcher(rows, "screened" if screen is not None else "plain")
        ids = screen(rows) if screen is not None else own_forward(rows).argmax(-1)
        reader.calls.append(ids.reshape(hidden.shape[:-1]))
        return hidden.new_zeros(*hidden.shape[:-1], 1)

    with _forward_replaced(head, forward):
        yield reader


@contextmanager
def _reading_hooked(head: nn.Module, reader: GreedyReader) -> Iterator[None]:
    """``greedy_head`` for a head with forward hooks: a hook of ours, after theirs, reads the
    argmax of the logits they leave."""

    def read(_module: nn.Module, _args: tuple, output: torch.Tensor) -> None:
        reader.calls.append(output.argmax(-1))

    handle = head.register_forward_hook(read)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def unread_head(head: nn.Module) -> Iterator[None]:
    """Within the block, ``head`` computes nothing and returns a ``[..., 1]`` placeholder: for
    forwards run for their cache or hidden states only (a sweep's prefix, extraction), where a
    262k-token unembedding would be the largest cost and nobody reads it. A head with forward
    hooks computes its logits as usual: its hooks read them (a hook indexing the vocabulary failed
    on the placeholder)."""
    with COMPUTING:  # as in ``greedy_head``
        if head._forward_hooks:
            yield
            return

        def forward(hidden: torch.Tensor) -> torch.Tensor:
            return hidden.new_zeros(*hidden.shape[:-1], 1)

        with _forward_replaced(head, forward):
            yield


#: how the head handled a row: inside ``greedy_head``, ``"screened"`` by its bfloat16 screen (and
#: float32 logits of the few candidates) or ``"plain"`` by the module's own forward (every logit,
#: then the argmax); ``"logits"`` an ordinary call, every logit handed to the caller
HeadPath = Literal["screened", "plain", "logits"]
#: ``observer(rows, path)`` is told of ``[rows, hidden]`` hidden rows the head computes logits for
HeadWatcher = Callable[[torch.Tensor, HeadPath], None]
_WATCHERS: weakref.WeakKeyDictionary[nn.Module, list[HeadWatcher]] = weakref.WeakKeyDictionary()


@contextmanager
def watching_head(head: nn.Module, observer: HeadWatcher) -> Iterator[None]:
    """Within the block, ``observer(rows, path)`` is told of every batch of hidden rows ``head``
    computes logits for, before it does: rows ``greedy_head`` reads (``"screened"``, or
    ``"plain"`` where it has no screen) and rows of ordinary calls (``"logits"``); rows under
    ``unread_head`` compute nothing and are not told. ``rows`` is the head's own input
    (``[rows, hidden]``): an observer that keeps it keeps a copy. Why: benchmarks count and capture
    the head's work through this, not by patching the internals; without a watcher nothing runs.

        >>> with watching_head(adapter.unembedding(), lambda rows, path: seen.append((len(rows), path))):
        ...     taskvec.sweep(adapter, queries, vectors, layers)
    """

    def ordinary_call(module: nn.Module, args: tuple) -> None:
        if args and module not in _OWN_FORWARDS:  # in greedy_head / unread_head the block tells
            observer(args[0].reshape(-1, args[0].shape[-1]), "logits")

    watchers = _WATCHERS.setdefault(head, [])
    watchers.append(observer)
    handle = head.register_forward_pre_hook(ordinary_call)
    try:
        yield
    finally:
        handle.remove()
        watchers.remove(observer)
        if not watchers:
            del _WATCHERS[head]


#: each module's forward as it was before the outermost block replaced it (the class's, or a
#: wrapper such as accelerate's, which loads offloaded weights and moves inputs to their device)
_OWN_FORWARDS: weakref.WeakKeyDictionary[nn.Module, object] = weakref.WeakKeyDictionary()


def _own_forward(module: nn.Module):
    """The module's forward without any of these blocks: what computes its real output."""
    return _OWN_FORWARDS.get(module, module.forward)


@contextmanager
def _forward_replaced(module: nn.Module, forward) -> Iterator[None]:
    """An instance attribute shadows the forward; whatever was there before (an outer block's
    replacement, or a wrapper of the module's own) comes back afterwards, so the blocks nest."""
    missing = object()
    previous = module.__dict__.get("forward", missing)
    outermost = module not in _OWN_FORWARDS
    if outermost:
        _OWN_FORWARDS[module] = module.forward
    module.forward = forward
    try:
        yield
    finally:
        if previous is missing:
            del module.forward
        else:
            module.forward = previous
        if outermost:
            del _OWN_FORWARDS[module]


# --- the screen -------------------------------------------------------------------------------------


class HeadScreen:
    """bfloat16 copy of a float32 linear head, and the sizes its error bound needs: calling it on
    ``[rows, hidden]`` gives each row's exact argmax id; ``weight16`` is the copy it scans and
    ``bound`` the per-row error it allows for."""

    def __init__(self, head: nn.Linear):
        weight = head.weight.detach()
        self.weight = weight
        self.bias = head.bias.detach() if head.bias is not None else None
        self.weight16 = weight.to(torch.bfloat16)
        self.max_norm16, self.max_residue = 0.0, 0.0
        for start in range(0, len(weight), 8192):  # in slices: no float32 copy of the whole head
            rounded = self.weight16[start : start + 8192].float()
            self.max_norm16 = max(self.max_norm16, float(rounded.norm(dim=-1).max()))
            residue = (weight[start : start + 8192] - rounded).norm(dim=-1)
            self.max_residue = max(self.max_residue, float(residue.max()))
        self.max_bias = float(self.bias.abs().max()) if self.bias is not None else 0.0
        self.summation = 2 * weight.shape[-1] * 2.0**-24  # float32 sums of n exact products
        self.key = _weight_key(head)

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._chunk(rows[s : s + CHUNK_ROWS]) for s in range(0, len(rows), CHUNK_ROWS)])

    def bound(self, x: torch.Tensor, x16: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
        """Per row, how far any bfloat16 logit within twice this bound of ``best`` (the row's
        largest) can be from its float32 value, times ``SAFETY``."""
        rounded = x16.float()
        norm16, residue = rounded.norm(dim=-1), (x - rounded).norm(dim=-1)
        inputs = (
            norm16 * self.max_residue
            + residue * self.max_norm16
            + residue * self.max_residue
            + self.summation * norm16 * self.max_norm16
        )
        # the result's rounding scales with |logit| <= |best| + 2 * bound (+ |bias|); solve for it
        result = RESULT_ROUNDING * (best.abs() + self.max_bias)
        return SAFETY * (inputs + result) / (1 - 2 * SAFETY * RESULT_ROUNDING)

    def _chunk(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.weight.dtype)
        if not bool(torch.isfinite(x).all()):
            return self._exact(x, None).argmax(-1)
        x16 = x.to(torch.bfloat16)
        approx = F.linear(x16, self.weight16)  # [rows, vocab]
        if self.bias is not None:
            approx = approx.float() + self.bias
        k = min(TOP_K, approx.shape[-1])
        top = approx.topk(k, dim=-1)
        values = top.values.float()
        reach = values[:, 0] - 2 * self.bound(x, x16, values[:, 0])  # the true argmax's is above
        inside = values[:, -1] < reach  # the row's candidates all lie in its top k
        candidates = [top.indices[inside][values[inside] >= reach[inside, None]]]
        if not bool(inside.all()):
            wide = approx[~inside].float() >= reach[~inside, None]
            candidates.append(wide.nonzero()[:, 1])
        tokens = torch.unique(torch.cat(candidates))  # sorted: ties resolve to the lowest id
        return tokens[self._exact(x, tokens).argmax(-1)]

    def _exact(self, x: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        """float32 logits of ``tokens`` (all tokens if None), their weight rows gathered
        ``EXACT_SLICE`` at a time."""
        if tokens is None:
            return F.linear(x, self.weight, self.bias)
        logits = []
        for start in range(0, len(tokens), EXACT_SLICE):
            part = tokens[start : start + EXACT_SLICE]
            bias = self.bias[part] if self.bias is not None else None
            logits.append(F.linear(x, self.weight[part], bias))
        return torch.cat(logits, dim=-1)


_SCREENS: weakref.WeakKeyDictionary[nn.Module, HeadScreen] = weakref.WeakKeyDictionary()


def _weight_key(head: nn.Linear) -> tuple:
    """Changes when the weight is replaced or edited in place (then the copy is rebuilt)."""
    return (head.weight.data_ptr(), head.weight._version, tuple(head.weight.shape))


def head_screen(head: nn.Module) -> HeadScreen | None:
    """The bfloat16 screen ``greedy_head`` uses for ``head`` (built once per weight), or None
    where it would not be exact or not faster. Public for ``bench/head.py``, which times its scan
    and counts the candidates its bound leaves beside other screens' (reading the screen itself,
    not a copy of its rules that could drift from it)."""
    if not isinstance(head, nn.Linear) or type(head).forward is not nn.Linear.forward:
        return None
    if head.weight.dtype != torch.float32 or head.weight.device.type != "cpu":
        return None
    if not _accumulates_in_float32():
        return None
    screen = _SCREENS.get(head)
    if screen is None or screen.key != _weight_key(head):
        screen = HeadScreen(head)
        _SCREENS[head] = screen
    return screen


@functools.cache
def _accumulates_in_float32() -> bool:
    """The bound assumes bfloat16 products summed in float32; a sum of 4096 ones tells (in
    bfloat16 it would stop at 256)."""
    ones = torch.ones(2, 4096, dtype=torch.bfloat16, device="cpu")  # the CPU backend is the question
    total = F.linear(ones, ones)
    return bool((total.float() == 4096).all())


__all__ = [
    "SAFETY",
    "GreedyReader",
    "HeadPath",
    "HeadScreen",
    "HeadWatcher",
    "greedy_head",
    "head_screen",
    "unread_head",
    "watching_head",
]
