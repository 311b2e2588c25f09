"""Work that several runs of one reproduction would repeat, done once.

A reproduction is ten ordinary runs (one per specification x query cell), the LLM -> VLM transfer
and the ensembling stage, and some of their inputs coincide exactly: every text-ICL cell (and the
ensembling) reads the delimiter states of the same text prompts, both image-ICL cells of a style
those of the same image prompts, and every cell whose queries are the same pictures (or the same
words) asks the same No Context answers. Where the VLM's language model is the base LLM itself
(the embedded VLM), the LLM -> VLM runs repeat the VLM -> VLM ones outright: the same vectors,
sweeps and answers. Those results are pure functions of the weights and the inputs, so a
``SharedWork`` handed to each run keys them by exactly that (the model that computes them, a
digest of every prompt's text and pixels, the options and vectors that shape the result) and
returns the first computation to the later runs. Each run still writes its own complete folder;
only the arithmetic is not redone.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import torch
from PIL import Image

from taskvec.models.adapter import ModelAdapter, OnProgress
from taskvec.prompts.inputs import image_digest
from taskvec.prompts.template import Prompt

T = TypeVar("T")


class SharedWork:
    """Results by key, kept for the life of the object (see ``compute_or_share`` for the key).
    With ``only``, results of other kinds (a key's first element) are computed and not kept."""

    def __init__(self, only: set[str] | None = None) -> None:
        self.only = only
        self._results: dict[tuple, object] = {}
        self._providers: dict[tuple, Callable[[OnProgress | None], None]] = {}
        #: called with ``(task, seed, config)`` as a protocol unit starts, so a reproduction can
        #: ``provide`` work the unit shares with units of other runs (see ``starting_unit``)
        self.unit_hooks: list[Callable[..., None]] = []
        #: (what, "computed" | "reused") -> count; ``what`` is the key's first element
        self.tally: Counter[tuple[str, str]] = Counter()

    @property
    def computed(self) -> int:
        return sum(n for (_, outcome), n in self.tally.items() if outcome == "computed")

    @property
    def reused(self) -> int:
        return sum(n for (_, outcome), n in self.tally.items() if outcome == "reused")

    @staticmethod
    def key(what: str, adapter: ModelAdapter, prompts: Sequence[Prompt], options: Hashable) -> tuple:
        """What a result is keyed by: what is computed, the model that computes it (object and
        weights), every prompt's content, and the options that shape it."""
        owner = adapter.computes_like(prompts)
        return (what, id(owner), owner.fingerprint, prompts_digest(prompts), options)

    def provide(
        self, keys: Sequence[tuple], compute: Callable[[OnProgress | None], Sequence[object]]
    ) -> None:
        """One computation that gives the results of several keys at once (``compute(on_progress)``
        returns them in the order of ``keys``); it runs when the first of them is asked for, and
        tells the ``on_progress`` of that ``get`` how far its whole work is (every key's)."""

        def run(on_progress: OnProgress | None) -> None:
            for key in keys:
                self._providers.pop(key, None)
            for key, result in zip(keys, compute(on_progress), strict=True):
                if key not in self._results:
                    self._results[key] = result
                    self.tally[(str(key[0]), "computed")] += 1

        for key in keys:
            if key not in self._results:
                self._providers[key] = run

    def starting_unit(self, task, seed: int, config) -> None:
        """A protocol unit of ``config`` for ``task`` and ``seed`` is about to be computed."""
        for hook in self.unit_hooks:
            hook(task, seed, config)

    def get(self, key: tuple, compute: Callable[[], T], on_progress: OnProgress | None = None) -> T:
        """``compute()``, or its result from an earlier call with the same key (or from a
        ``provide``d computation, which is told ``on_progress`` if it runs now: ``compute``
        tells its own). The result is handed out as is: callers treat it as read-only."""
        if key not in self._results and key in self._providers:
            self._providers[key](on_progress)
            return self._results[key]  # type: ignore[return-value]
        if key in self._results:
            self.tally[(str(key[0]), "reused")] += 1
            return self._results[key]  # type: ignore[return-value]
        result = compute()
        if self.only is None or key[0] in self.only:
            self._results[key] = result
        self.tally[(str(key[0]), "computed")] += 1
        return result


def prompts_digest(prompts: Sequence[Prompt]) -> str:
    """A digest of the prompts' segments in order: text as UTF-8, images by ``image_digest`` (mode,
    size and pixels)."""
    digest = hashlib.sha256()
    for prompt in prompts:
        digest.update(b"\x00prompt")
        for segment in prompt:
            if isinstance(segment, Image.Image):
                digest.update(f"\x00image:{image_digest(segment)}".encode())
            else:
                digest.update(b"\x00text:" + segment.encode())
    return digest.hexdigest()


def compute_or_share(
    shared: SharedWork | None,
    what: str,
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    options: Hashable,
    compute: Callable[[], T],
    on_progress: OnProgress | None = None,
) -> T:
    """``compute()`` when nothing is shared, else through ``shared``, keyed by ``what`` is
    computed, the model (object and weights), every prompt's content, and ``options``.
    ``on_progress``: what a ``provide``d computation that runs for this call tells how far it is
    (``compute`` is handed its own)."""
    if shared is None:
        return compute()
    return shared.get(SharedWork.key(what, adapter, prompts, options), compute, on_progress)


def tensor_digest(tensor: torch.Tensor | None) -> str:
    """A digest of a tensor's dtype, shape and values, to key work that depends on it."""
    if tensor is None:
        return ""
    tensor = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


__all__ = ["SharedWork", "compute_or_share", "prompts_digest", "tensor_digest"]
