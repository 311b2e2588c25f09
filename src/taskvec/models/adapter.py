"""The model adapter: the one place that knows how a model family is put together.

Everything above this layer (extraction, patching, evaluation, analysis) talks to a
``ModelAdapter`` only: it encodes prompts (text and images) into a left-padded batch, names the
language model's decoder layers, runs forward passes (optionally from a cached prefix) and maps
hidden states to the vocabulary for the logit lens. Adding a family is adding one adapter.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from taskvec.errors import LayerError, ModelSpecError
from taskvec.models.cache_keyword import cache_argument
from taskvec.prompts.template import Prompt

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class NotAPrefix(ValueError):
    """A prompt's tokens do not begin with the tokens of the prefix it was said to continue."""


#: ``on_progress(done, total)``: told after each batch of a long computation how much of it is
#: done, in the unit its function names (prompts, answers, sweep rows); it only listens (a
#: progress bar), so what is computed never depends on it
OnProgress = Callable[[int, int], None]


@dataclass
class Encoded:
    """A left-padded batch: the last column is every prompt's last (delimiter) token."""

    input_ids: torch.Tensor  # [batch, seq]
    attention_mask: torch.Tensor  # [batch, seq]
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. pixel_values

    @property
    def batch_size(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def device(self) -> torch.device:
        return self.input_ids.device

    def position_ids(self) -> torch.Tensor:
        """Positions that ignore left padding, so padded and unpadded runs agree."""
        return (self.attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def to(self, device: torch.device | str) -> Encoded:
        """The batch on ``device`` (where the model reads its inputs); no copy if it is there."""
        return Encoded(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            {key: value.to(device) for key, value in self.extra.items()},
        )


@dataclass(frozen=True)
class BaseLanguageModel:
    """What a vision-language model knows of the language model it is built on, for LLM -> VLM
    transfer (see ``ModelAdapter.base_language_model``)."""

    #: a name ``load_model`` loads it by (None: not known)
    name: str | None = None
    #: its own adapter, when the VLM holds one (the very modules and tokenizer it runs on text)
    adapter: ModelAdapter | None = None
    #: the VLM's language model is this LLM's weights unchanged (never trained with the VLM)
    frozen: bool = False


def model_logits(head_output: torch.Tensor, text_config) -> torch.Tensor:
    """What a model does to its LM head's output before the softmax, as its transformers config
    says: Cohere's ``logit_scale`` (times), Granite's ``logits_scaling`` (divided by), Gemma 2's
    ``final_logit_softcapping`` (``cap * tanh(logits / cap)``). Each keeps the logits' order (the
    greedy token does not depend on it), but the logit lens's probabilities do: without it they
    were at another temperature than the model's own."""
    logits = head_output
    if scale := getattr(text_config, "logit_scale", None):
        logits = logits * scale
    if divisor := getattr(text_config, "logits_scaling", None):
        logits = logits / divisor
    if cap := getattr(text_config, "final_logit_softcapping", None):
        logits = torch.tanh(logits / cap) * cap
    return logits


class ModelAdapter(ABC):
    """A causal (vision-)language model seen as: prompts -> tokens -> decoder layers -> logits."""

    #: short registry name, e.g. "smollm2-135m"
    name: str
    #: where the weights came from (hub id, path or package file)
    model_id: str
    #: the text tokenizer (a processor's ``.tokenizer`` for VLMs)
    tokenizer: PreTrainedTokenizerBase

    def __init__(self, model: nn.Module, name: str, model_id: str, fingerprint: str = ""):
        self.model = model  # left in the mode it is in: every forward runs under ``evaluating``
        self.name = name
        self.model_id = model_id
        self._weights_fingerprint = fingerprint
        self._fingerprinted_state = self._weights_state()
        self.numerics = ""  # "" = float32 on the CPU; else e.g. "bfloat16+device_map=auto"

    def __repr__(self) -> str:
        numerics = f", {self.numerics}" if self.numerics else ""
        return (
            f"{type(self).__name__}({self.name!r}, {self.num_layers} layers x {self.hidden_size}{numerics})"
        )

    def mark_numerics(self, numerics: str) -> None:
        """Record non-default numerics (dtype, quantisation, device) in the fingerprint: the same
        weights computed in bfloat16 give other numbers."""
        self.numerics = numerics

    # --- structure -------------------------------------------------------------------------
    @property
    @abstractmethod
    def layers(self) -> nn.ModuleList:
        """The language model's decoder layers, in order."""

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    @abstractmethod
    def text_config(self):
        """The language model's transformers config (of a VLM: its text part)."""

    @property
    def hidden_size(self) -> int:
        """Width of the residual stream the task vectors live in."""
        return int(self.text_config.hidden_size)

    @property
    def max_positions(self) -> int | None:
        """The positions the language model was trained on, where its config says."""
        limit = getattr(self.text_config, "max_position_embeddings", None)
        return int(limit) if isinstance(limit, int) and limit > 0 else None

    @property
    def fingerprint(self) -> str:
        """Identifies the exact weights (a hash) and non-default numerics, so saved vectors and
        caches can be checked."""
        return numerics_fingerprint(self.weights_fingerprint, self.numerics)

    @property
    def weights_fingerprint(self) -> str:
        """The weights alone, whatever precision they compute in (what a projector trained on
        them is bound to). Weights changed since they were fingerprinted (an optimizer step,
        ``load_state_dict``, an in-place edit or cast of a model in memory) are hashed again, so
        a run or vector of the old weights is never taken for theirs."""
        state = self._weights_state()
        if state != self._fingerprinted_state:
            self._weights_fingerprint = state_dict_fingerprint(self.model)
            self._fingerprinted_state = state
        return self._weights_fingerprint

    def _weights_state(self) -> tuple:
        """What changes when a weight does, read without touching its values: each parameter's
        version counter (torch bumps it on every in-place write) and dtype. Moving the model to
        another device leaves it (the weights are the same), and so does accelerate swapping
        offloaded weights in and out of ``meta`` for each forward (they are left out); writing
        through ``.data`` is not seen."""
        return tuple((id(p), p._version, p.dtype) for p in self.model.parameters() if p.device.type != "meta")

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """The model in eval mode (no dropout) for the computation inside, then back in the mode
        each module was in: a model wrapped from memory may be training, and taskvec's numbers
        must not depend on that."""
        training = [module for module in self.model.modules() if module.training]
        for module in training:
            module.training = False
        try:
            yield
        finally:
            for module in training:
                module.training = True

    def computes_like(self, prompts: Sequence[Prompt]) -> ModelAdapter:
        """The adapter whose computation on ``prompts`` this one repeats exactly (itself, unless a
        family knows better: the embedded VLM on text is its frozen language model). Work shared
        between runs (``SharedWork``) is keyed by it, so identical arithmetic is done once."""
        return self

    @property
    def device(self) -> torch.device:
        """Where the model reads its inputs: the device of its input embeddings (the first device
        of a model spread over several). ``encode`` puts batches there; every tensor the engine
        makes to meet them is made there too, and results leave the public API on the CPU."""
        weight = self.model.get_input_embeddings().weight
        return torch.device("cpu") if weight.device.type == "meta" else weight.device

    def base_language_model(self) -> BaseLanguageModel | None:
        """The language model this (vision-language) model is built on, for LLM -> VLM transfer:
        the base LLM's task vectors patched into this model. None (the default) where it is not
        known; ``taskvec reproduce --llm`` then names it, or Table 4 is skipped.

            >>> vlm = load_model("embedded-vlm")
            >>> vlm.base_language_model().name
            'gemma3-270m'
        """
        return None

    def recognition(self) -> dict | None:
        """How well the model names the suite's pictures, measured when its weights were made
        (style -> domain -> first-token accuracy), for a report to show beside its results; None
        (the default) where nothing was measured, as for any model taskvec did not train."""
        return None

    def check_layer(self, layer: int) -> int:
        return check_layer(layer, self.num_layers, self.name)

    # --- tokens ----------------------------------------------------------------------------
    @abstractmethod
    def encode(self, prompts: Sequence[Prompt]) -> Encoded:
        """Tokenise prompts (expanding images into their placeholder tokens), left-padded, on
        ``self.device``."""

    def token_count(self, prompt: Prompt) -> int:
        """Length of one prompt in tokens (images counted as their placeholder tokens); for
        planning batches, so it never needs the model's device."""
        return int(self.encode([prompt]).attention_mask.sum())

    def use_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Take ``tokenizer`` as the model's text tokenizer, padding on the left (a batch's last
        position is every prompt's last token) with the end-of-sequence token where it has no pad
        token of its own."""
        self.tokenizer = tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        _check_nothing_after_text(tokenizer)

    def decode(self, token_ids: Sequence[int] | torch.Tensor) -> str:
        """Token ids -> text, special tokens kept (an answer that ends in one says so)."""
        return self.tokenizer.decode([int(t) for t in token_ids], skip_special_tokens=False)

    def text_token_ids(self, text: str) -> list[int]:
        """Token ids of plain text, without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def special_token_ids(self) -> frozenset[int]:
        """The tokenizer's control tokens (BOS, EOS, padding, image markers): never text of an answer."""
        return frozenset(self.tokenizer.all_special_ids)

    def first_tokens_of(self, text: str) -> list[str]:
        """The token a text starts with, tokenised on its own and after a space."""
        tokens = []
        for variant in (text, " " + text):
            ids = self.text_token_ids(variant)
            if ids:
                tokens.append(self.decode(ids[:1]))
        return tokens

    def decode_each(self, token_ids: Sequence[int] | torch.Tensor) -> list[str]:
        return [self.decode([int(t)]) for t in token_ids]

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    #: whether prompts may hold images (a class fact: the registry reads it before any model loads)
    supports_images: ClassVar[bool] = False

    # --- forward passes --------------------------------------------------------------------
    def forward(
        self,
        encoded: Encoded,
        cache=None,
        use_cache: bool = False,
        last_only: bool = False,
    ):
        """Run the model on a whole batch (or, with ``last_only``, on its last token given a cache
        of the rest). Returns the HF output; ``logits`` hold the last position only."""
        kwargs = self.last_token_inputs(encoded) if last_only else self.full_inputs(encoded)
        return self.model(**kwargs, **cache_argument(cache), use_cache=use_cache, logits_to_keep=1)

    def full_inputs(self, encoded: Encoded) -> dict:
        return {
            "input_ids": encoded.input_ids,
            "attention_mask": encoded.attention_mask,
            "position_ids": encoded.position_ids(),
            **encoded.extra,
        }

    def prefix(self, encoded: Encoded) -> Encoded:
        """Everything but the last token: the part every layer variant of a query shares."""
        return Encoded(encoded.input_ids[:, :-1], encoded.attention_mask[:, :-1], encoded.extra)

    def last_token_inputs(self, encoded: Encoded) -> dict:
        """Inputs for the last token alone, given a cache of the prefix."""
        return {
            "input_ids": encoded.input_ids[:, -1:],
            "attention_mask": encoded.attention_mask,
            "position_ids": encoded.position_ids()[:, -1:],
        }

    def grow(self, encoded: Encoded, next_ids: torch.Tensor) -> Encoded:
        """``encoded`` with a generated token ``next_ids: [batch, 1]`` appended to every row; its
        ``last_token_inputs`` are the next decoding step's. Families with derived per-token inputs
        (3-D positions, token types) override this."""
        return Encoded(
            torch.cat([encoded.input_ids, next_ids], dim=1),
            torch.cat([encoded.attention_mask, torch.ones_like(next_ids)], dim=1),
            {},
        )

    def rows(self, encoded: Encoded, index: torch.Tensor) -> Encoded:
        """Rows ``index`` of ``encoded`` (they may repeat), for steps whose prompt is already in a
        cache: a sweep's patched rows, the answers still being generated. Extras are batch first;
        families whose extras are per image (pixels, image embeddings) drop them here."""
        extra = {key: value[index] for key, value in encoded.extra.items()}
        return Encoded(encoded.input_ids[index], encoded.attention_mask[index], extra)

    #: whether ``continuation`` can feed a prompt's rest to a cached prefix (plain positions and
    #: per-image inputs); families with derived per-token inputs (3-D positions) cannot
    continues_cached_prefix: bool = False

    def continuation(self, prefix: Prompt, prompt: Prompt) -> tuple[list[int], dict[str, torch.Tensor]]:
        """The token ids of ``prompt`` after those of ``prefix``, and the extra inputs (image
        embeddings) they need; raises ``NotAPrefix`` if ``prompt`` does not tokenise as ``prefix``
        followed by more tokens."""
        raise NotImplementedError(f"{type(self).__name__} cannot continue a cached prefix")

    @staticmethod
    def _rest(prefix_ids: Sequence[int], prompt_ids: Sequence[int]) -> list[int]:
        """``prompt_ids`` after ``prefix_ids``; raises ``NotAPrefix`` unless they begin with it."""
        n = len(prefix_ids)
        if len(prompt_ids) <= n or list(prompt_ids[:n]) != list(prefix_ids):
            raise NotAPrefix("the prompt's tokens do not continue the prefix's")
        return list(prompt_ids[n:])

    @property
    def prefix_cache_is_exact(self) -> bool:
        """False for models whose prefix attends to later tokens (then the sweep runs in full)."""
        return True

    # --- logit lens ------------------------------------------------------------------------
    @abstractmethod
    def final_norm(self) -> nn.Module:
        """The norm applied after the last decoder layer."""

    @abstractmethod
    def unembedding(self) -> nn.Module:
        """Hidden -> vocabulary logits (the LM head)."""

    def finish_logits(self, head_output: torch.Tensor) -> torch.Tensor:
        """What the model does to its LM head's output before the softmax, read from its config
        (``model_logits``). A family whose model class ignores a field its text config carries
        (a VLM wrapper that does not apply its LLM's ``logit_scale``) overrides this; the
        contract test of the logit lens fails until it does."""
        return model_logits(head_output, self.text_config)

    def logit_lens(self, hidden: torch.Tensor) -> torch.Tensor:
        """Decode residual-stream states ``[..., hidden]`` to vocabulary logits ``[..., vocab]``,
        as the model finishes its own (``finish_logits``): at the last layer, the model's logits."""
        with COMPUTING, torch.no_grad():
            return self.finish_logits(self.unembedding()(self.final_norm()(hidden)))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "model_id": self.model_id,
            "family": type(self).__name__,
            "fingerprint": self.fingerprint,
            "numerics": self.numerics or "float32",
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "supports_images": self.supports_images,
        }


def require_adapter(model, caller: str) -> ModelAdapter:
    """``model`` if it is a taskvec model; a transformers model (or anything else) is refused with
    one line that says how to wrap it."""
    if isinstance(model, ModelAdapter):
        return model
    raise ModelSpecError(
        f"{caller} takes a taskvec model, not a {type(model).__name__}: wrap a transformers model "
        f"with taskvec.load_model(hf_model, tokenizer_or_processor) first"
    )


def _check_nothing_after_text(tokenizer: PreTrainedTokenizerBase) -> None:
    """Refuse a tokenizer that appends a token (an end-of-sequence) after every text: a prompt's
    last token would be it, not the delimiter that task vectors are read at and patched into."""
    with_specials = list(tokenizer("A:")["input_ids"])
    plain = list(tokenizer("A:", add_special_tokens=False)["input_ids"])
    if plain and with_specials[-len(plain) :] != plain:
        appended = tokenizer.convert_ids_to_tokens(with_specials[-1])
        raise ModelSpecError(
            f"the tokenizer appends {appended!r} after every text, so a prompt would end there and "
            "not at its delimiter; load it with add_eos_token=False (or a post-processor that adds "
            "nothing after the text)"
        )


def given_model(model, caller: str) -> ModelAdapter | None:
    """``require_adapter`` for a pipeline's optional model (None: the pipeline loads its own)."""
    return None if model is None else require_adapter(model, caller)


#: held by every computation on a model (``model_call``, ``ModelAdapter.logit_lens``, and
#: ``models.head``'s ``greedy_head`` and ``unread_head``): they put hooks on shared modules and
#: replace the LM head's forward for their duration, so two threads at once read each other's
#: patches and restore each other's head (silently wrong answers, then a head that returns
#: width-1 placeholders for good). Calls from several threads take turns; for parallel work, use
#: processes (``torchrun``, docs/scaling-out.md).
COMPUTING = threading.RLock()


def model_call(function: Callable) -> Callable:
    """A public function whose first argument is the model: anything but a taskvec model is
    refused in one line (``require_adapter``), and the function runs with the model in eval mode
    (``ModelAdapter.evaluating``), one such call at a time in a process (``COMPUTING``)."""

    @functools.wraps(function)
    def call(model, *args, **kwargs):
        adapter = require_adapter(model, function.__name__)
        with COMPUTING, adapter.evaluating():
            return function(adapter, *args, **kwargs)

    return call


def check_layer(layer: int, num_layers: int, model: str) -> int:
    """``layer`` as an int if it is a decoder layer of a model of ``num_layers`` layers (any
    integer type: a layer read from a pandas frame is a numpy integer), else one line."""
    if isinstance(layer, bool):
        raise LayerError(f"layer {layer!r} is a bool, not a layer index; give an int")
    try:
        index = operator.index(layer)
    except TypeError:
        raise LayerError(f"layer {layer!r} is a {type(layer).__name__}, not an integer layer index") from None
    if index < 0 or index >= num_layers:
        raise LayerError(
            f"layer {layer!r} is out of range for {model}: it has decoder layers 0..{num_layers - 1}"
        )
    return index


def numerics_fingerprint(weights: str, numerics: str) -> str:
    """A model's fingerprint: its weights', marked with non-default numerics (``LoadOptions.numerics``)."""
    return f"{weights}@{numerics}" if numerics else weights


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, read a block at a time (weights files are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_fingerprint(path: str | Path) -> str:
    """SHA-256 of a weights file (first 16 hex digits are plenty to tell files apart)."""
    return file_sha256(path)[:16]


def state_dict_fingerprint(model) -> str:
    """What identifies the weights of a model already in memory: SHA-256 of every tensor of its
    state dict (names, dtypes, shapes and bytes, in name order; a tied tensor counted once). The
    bytes are read in place where the tensor lives on the CPU (no copy); a tensor on ``meta``
    (offloaded) contributes its name, dtype and shape only."""
    digest = hashlib.sha256()
    seen: set[tuple[int, int]] = set()
    for name, tensor in sorted(model.state_dict(keep_vars=False).items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)};".encode())
        if tensor.device.type == "meta" or tensor.numel() == 0:
            continue
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen:
            continue
        seen.add(key)
        flat = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
        digest.update(memoryview(flat.cpu().numpy()))
    return digest.hexdigest()[:16]
