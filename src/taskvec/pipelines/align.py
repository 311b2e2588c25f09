"""``taskvec align``: train the embedded VLM's recogniser and projector, and ship their weights.

Stage 1 (the recogniser) does not depend on the LLM and is shared by every backbone; stage 2
(the projector) is trained per backbone. Each writes a small safetensors file with a sidecar
holding its configuration, the measured metrics and the loss log's path. The training itself is
``taskvec.align``'s; this pipeline loads the parts, shows the progress and writes the weights.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import time
import warnings
from pathlib import Path

import torch
from rich.progress import Progress, TextColumn

from taskvec.align.evaluate import (
    check_sample_accuracy,
    classifier_accuracy,
    recognition_table,
    summarise,
)
from taskvec.align.lora import RELATION_WORDS, LoraStageConfig, category, prose_ids, train_lora
from taskvec.align.projector import (
    ProjectorConfig,
    calibrated_temperature,
    new_projector,
    pooled_features,
    train_projector,
)
from taskvec.align.recogniser import Recogniser, RecogniserConfig, RecognitionData
from taskvec.align.recogniser import train_recogniser as _train_recogniser
from taskvec.errors import ModelSpecError, StorageError
from taskvec.models.embedded.adapter import EmbeddedVLMAdapter
from taskvec.models.embedded.load import (
    RECOGNISER_FILE,
    assemble,
    backbone,
    build_encoder,
    entity_names,
    lora_file,
    name_token_ids,
    projector_file,
)
from taskvec.models.embedded.lora import lora_layers, lora_state
from taskvec.models.embedded.model import EntityNameProjector
from taskvec.models.embedded.weights import WEIGHTS_DIR, load_weights, save_weights
from taskvec.models.families.causal_lm import CausalLMAdapter
from taskvec.models.loading import cache_root
from taskvec.pipelines.progress import progress_bar
from taskvec.storage.run_folder import check_writable, write_atomic
from taskvec.tasks import images as suite


def training_bar(show: bool = True, get_time=None) -> Progress:
    """The pipelines' bar (its time left holds for steps of minutes), with each stage's last loss
    (a ``loss`` field); ``get_time``: a clock, for tests."""
    return progress_bar(show, get_time, TextColumn("loss {task.fields[loss]:.3f}"))


def _log_line(progress: Progress, stage: str, step: int, total: int, loss: float, every: int = 50) -> None:
    """A plain line now and then, for logs and terminals without a live bar."""
    if step % every == 0 or step + 1 == total:
        progress.console.log(f"{stage}: step {step + 1}/{total} loss {loss:.4f}")


def _write_log(path: Path, log: list[dict]) -> None:
    write_atomic(path, "".join(json.dumps(row) + "\n" for row in log))


def _writable(out: str | Path) -> Path:
    """The weights folder as a path, refused in one line before any training where it cannot be
    written (a file in the way, read-only, full): the first write came after the training."""
    out = Path(out)
    check_writable(out)
    return out


def align_recogniser(config: RecogniserConfig, out: Path = WEIGHTS_DIR, device: str = "cpu") -> dict:
    """Stage 1: fine-tune the encoder as an entity recogniser on ``device``; write
    ``recogniser.safetensors``."""
    out = _writable(out)
    entity_ids = suite.entities()
    started = time.perf_counter()
    with training_bar() as progress:
        bar = progress.add_task("stage 1: recogniser", total=None, loss=float("nan"))

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(bar, total=total, completed=step + 1, loss=loss)
            _log_line(progress, "recogniser", step, total, loss)

        model, log = _train_recogniser(config, entity_ids, on_step, device=device)
    seconds = time.perf_counter() - started
    accuracy = classifier_accuracy(model.encoder, model.head, config.image_size)
    tensors = {
        **{f"encoder.{k}": v for k, v in model.encoder.state_dict().items() if not k.startswith("_fc.")},
        **{f"head.{k}": v for k, v in model.head.state_dict().items()},
    }
    info = {
        "config": config.model_dump(mode="json"),
        "entity_ids": entity_ids,
        "train_seconds": round(seconds, 1),
        "final_loss": log[-1]["loss"],
        "classifier_top1": accuracy.to_dict(orient="index"),
        "command": f"taskvec align --stage recogniser --seed {config.seed}"
        + (f" --epochs {config.epochs}" if config.epochs != RecogniserConfig().epochs else ""),
    }
    save_weights(out / RECOGNISER_FILE, tensors, info)
    _write_log(out / "logs" / f"{RECOGNISER_FILE}.jsonl", log)  # after the weights, as each stage does
    return info


def load_recogniser(out: Path = WEIGHTS_DIR) -> tuple[Recogniser, dict]:
    tensors, info = load_weights(out / RECOGNISER_FILE)
    encoder = build_encoder({k[len("encoder.") :]: v for k, v in tensors.items() if k.startswith("encoder.")})
    model = Recogniser(encoder, len(info["entity_ids"]))
    model.head.load_state_dict({"weight": tensors["head.weight"], "bias": tensors["head.bias"]})
    return model.eval(), info


@torch.no_grad()
def align_projector(key: str, config: ProjectorConfig, out: Path = WEIGHTS_DIR, options=None) -> dict:
    """Stage 2: train the projector against backbone ``key``; write ``projector-<key>``.
    ``options`` (dtype, device) apply to the LLM; the encoder and projector join it there."""
    from taskvec.models.registry import load_model

    out = _writable(out)
    recogniser, recogniser_info = load_recogniser(out)
    entity_ids = recogniser_info["entity_ids"]
    llm = load_model(backbone(key).llm, options)
    projector = new_projector(len(entity_ids), llm.hidden_size, config)
    projector.classifier.load_state_dict(recogniser.head.state_dict())
    adapter = training_vlm(llm, recogniser, recogniser_info, projector, f"embedded-vlm-{key}")
    data = RecognitionData.training(entity_ids)
    started = time.perf_counter()
    with training_bar() as progress:
        bar = progress.add_task(f"stage 2: projector ({key})", total=config.steps, loss=float("nan"))

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(bar, completed=step + 1, loss=loss)
            _log_line(progress, f"projector {key}", step, total, loss)

        features = _features_said(progress, bar, recogniser, data, config, recogniser_info["sha256"])
        temperature = None
        if config.calibrate_temperature:
            temperature = calibrated_temperature(projector.classifier, features, data.labels)
            projector.log_temperature.fill_(math.log(temperature))
        with torch.enable_grad():
            log = train_projector(adapter, features, data, config, on_step)
    seconds = time.perf_counter() - started
    projector.eval()
    rows = recognition_table(adapter)
    sample = check_sample_accuracy(adapter)
    state = projector.state_dict()
    tensors = {f"projector.{k}": v.cpu() for k, v in state.items() if not k.startswith("classifier.")}
    info = {
        "config": config.model_dump(mode="json"),
        "backbone": key,
        "llm": backbone(key).llm,
        "llm_fingerprint": llm.weights_fingerprint,
        "recogniser_sha256": recogniser_info["sha256"],
        "calibrated_temperature": temperature,
        "learned_temperature": round(float(projector.log_temperature.exp()), 4),
        "train_seconds": round(seconds, 1),
        "final_loss": log[-1]["loss"],
        "recognition_strict": summarise(rows).to_dict(orient="index"),
        "check_sample": sample,
        "command": f"taskvec align --stage projector --backbone {key} --seed {config.seed}"
        + (f" --steps {config.steps}" if config.steps != ProjectorConfig().steps else ""),
    }
    save_weights(out / projector_file(key), tensors, info)
    _write_log(out / "logs" / f"{projector_file(key)}.jsonl", log)
    return info


@torch.no_grad()
def align_lora(key: str, config: LoraStageConfig, out: Path = WEIGHTS_DIR, options=None) -> dict:
    """Stage 2 with a tuned LLM (``align.lora``): start from the shipped projector of ``key``
    (in ``out``), train it further together with LoRA adapters on the LLM; write ``lora-<key>``,
    the weights of ``embedded-vlm-<key>-lora``. The recogniser and its features are reused."""
    from taskvec.models.registry import load_model

    out = _writable(out)
    recogniser, recogniser_info = load_recogniser(out)
    start_state, start_info = load_weights(out / projector_file(key))
    if start_info["recogniser_sha256"] != recogniser_info["sha256"]:
        raise ModelSpecError(
            f"{projector_file(key)} was trained on another recogniser; run `taskvec align --stage "
            f"projector --backbone {key}` first"
        )
    projector_config = ProjectorConfig(**start_info["config"])
    entity_ids = recogniser_info["entity_ids"]
    llm = load_model(backbone(key).llm, options)
    # the bare LLM's, which loading checks against: after training the adapters are merged into
    # its weights, and a fingerprint read then would be the tuned model's (every file refused)
    bare_fingerprint = llm.weights_fingerprint
    projector = new_projector(len(entity_ids), llm.hidden_size, projector_config)
    projector.load_state_dict(
        {
            "classifier.weight": recogniser.head.weight,
            "classifier.bias": recogniser.head.bias,
            **{k[len("projector.") :]: v for k, v in start_state.items()},
        }
    )
    adapter = training_vlm(
        llm, recogniser, recogniser_info, projector, f"embedded-vlm-{key}-lora", tuned=True
    )
    data = RecognitionData.training(entity_ids)
    names = entity_names(entity_ids)
    domains = [suite.entity_info(entity)["domain"] for entity in entity_ids]
    manifest = [suite.entity_info(entity) for entity in entity_ids]
    categories = {
        "subcategory": [category(info["subcategory"]) for info in manifest],
        "group": [category(info["category"]) for info in manifest],
        "domain": domains,
    }
    started = time.perf_counter()
    with training_bar() as progress:
        bar = progress.add_task(f"stage 2 + LoRA ({key})", total=config.steps, loss=float("nan"))

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(bar, completed=step + 1, loss=loss)
            _log_line(progress, f"lora {key}", step, total, loss, every=5)

        sha = recogniser_info["sha256"]
        features = _features_said(progress, bar, recogniser, data, projector_config, sha)
        with torch.enable_grad():
            prose = prose_ids(adapter.tokenizer) if config.prose_batch_size else None
            log = train_lora(adapter, features, data, names, domains, config, on_step, categories, prose)
    seconds = time.perf_counter() - started
    projector.eval()
    llm_module = adapter.model.llm
    # the trained tensors before anything else, so a failure below costs no retraining
    checkpoint = io.BytesIO()
    torch.save({"projector": projector.state_dict(), "lora": lora_state(llm_module), "log": log}, checkpoint)
    kept = cache_root() / "align" / f"{lora_file(key)}-trained.pt"
    try:
        write_atomic(kept, checkpoint.getvalue())
    except (StorageError, OSError) as error:  # a copy for safety: no reason to lose the training
        warnings.warn(f"the trained adapters were not kept in the cache ({error}); going on", stacklevel=2)
    # measure what loading will give: the stored (half-precision) adapters, merged
    adapters = {name: tensor.detach().half().float() for name, tensor in lora_state(llm_module).items()}
    llm_module.load_state_dict(adapters, strict=False)
    for layer in lora_layers(llm_module):
        layer.merge()
    rows = recognition_table(adapter)
    sample = check_sample_accuracy(adapter)
    tensors = {
        **{
            f"projector.{k}": v.cpu()
            for k, v in projector.state_dict().items()
            if not k.startswith("classifier.")
        },
        **{f"lora.{k}": v.cpu() for k, v in adapters.items()},
    }
    info = {
        "config": config.model_dump(mode="json"),
        "projector_config": projector_config.model_dump(mode="json"),
        "backbone": key,
        "llm": backbone(key).llm,
        "llm_fingerprint": bare_fingerprint,
        "recogniser_sha256": recogniser_info["sha256"],
        "start_projector_sha256": start_info["sha256"],
        "training_data": _lora_training_data(config),
        "train_seconds": round(seconds, 1),
        "final_loss": log[-1]["loss"],
        "recognition_strict": summarise(rows).to_dict(orient="index"),
        "check_sample": sample,
        "command": f"taskvec align --stage lora --backbone {key} --seed {config.seed}"
        + (f" --steps {config.steps}" if config.steps != LoraStageConfig().steps else ""),
    }
    save_weights(out / lora_file(key), tensors, info)
    _write_log(out / "logs" / f"{lora_file(key)}.jsonl", log)
    return info


def _lora_training_data(config: LoraStageConfig) -> str:
    """The sidecar's account of what the LoRA stage trained on."""
    distilled = "each answer's first token" if config.distill_at == "answers" else "every token"
    asked = {"subcategory": "Unicode subcategories", "group": "Unicode groups", "domain": "suite domains"}
    categories = (
        f"; text ICL on the entities' {' or '.join(asked[r] for r in config.category_relations)} "
        f"(cross-entropy on the answer, weight {config.category_weight})"
        if config.category_batch_size
        else ""
    )
    prose = (
        f"; windows of the Python language reference's text (cross-entropy on every token, weight "
        f"{config.prose_weight})"
        if config.prose_batch_size
        else ""
    )
    relations = ", ".join(["itself", *(RELATION_WORDS[r] for r in RELATION_WORDS if r in config.relations)])
    return (
        f"entity names of the image suite and relations computed from a name ({relations}); image "
        "sequences with image or text demonstrations (cross-entropy on the image query's answer), "
        f"text sequences distilled from the frozen LLM (KL at {distilled}){categories}{prose}; no "
        "task label, no task split"
    )


def training_vlm(
    llm: CausalLMAdapter,
    recogniser: Recogniser,
    recogniser_info: dict,
    projector: EntityNameProjector,
    name: str,
    tuned: bool = False,
) -> EmbeddedVLMAdapter:
    """The VLM stage 2 trains: ``projector`` (its name table filled from ``llm``'s embeddings of
    the recogniser's entity names) between the recogniser's encoder and ``llm``, all on the LLM's
    device. ``tuned``: the LLM's own weights are trained too (LoRA)."""
    names = entity_names(recogniser_info["entity_ids"])
    projector.set_name_table(llm.model.get_input_embeddings(), name_token_ids(llm.tokenizer, names))
    image_size = recogniser_info["config"]["image_size"]
    adapter = assemble(llm, recogniser.encoder, projector, name, "training", image_size, tuned=tuned)
    adapter.model.to(llm.device)  # the encoder and projector join the LLM on its device
    return adapter


def _features_said(
    progress, bar, recogniser, data, config: ProjectorConfig, recogniser_sha: str
) -> torch.Tensor:
    """``cached_features`` with the bar saying what it waits for: computing them takes minutes
    on a CPU, and the bar sat at 0 steps with no word."""
    description = progress.tasks[[t.id for t in progress.tasks].index(bar)].description
    progress.update(bar, description=f"{description}: the recogniser's features of the tiles first")
    features = cached_features(recogniser, data, config, recogniser_sha)
    progress.update(bar, description=description)
    return features


def cached_features(recogniser, data, config: ProjectorConfig, recogniser_sha: str) -> torch.Tensor:
    """The recogniser's pooled features of the training tiles, computed once per recogniser and
    augmentation setting and kept in the taskvec cache (both backbones train on the same ones)."""
    key = f"{recogniser_sha[:16]}-{config.augmented_copies}-{config.seed}-{len(data.labels)}"
    path = cache_root() / "align" / f"features-{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as error:
            warnings.warn(f"{path} is damaged ({error}); computing the features again", stacklevel=2)
    with torch.no_grad():
        features = pooled_features(recogniser, data, config)
    buffer = io.BytesIO()
    torch.save(features, buffer)
    try:
        write_atomic(path, buffer.getvalue())
    except (StorageError, OSError) as error:  # a cache: the training goes on without it
        warnings.warn(f"the features were not kept in the cache ({error}); going on", stacklevel=2)
    return features


__all__ = [
    "LoraStageConfig",
    "ProjectorConfig",
    "RecogniserConfig",
    "align_lora",
    "align_projector",
    "align_recogniser",
    "load_recogniser",
    "training_bar",
    "training_vlm",
]
