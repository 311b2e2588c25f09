"""Assemble the embedded VLM from its parts: a named LLM, the shipped recogniser and projector."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from taskvec.errors import ModelSpecError
from taskvec.models.embedded.adapter import EmbeddedVLMAdapter, ensure_image_token
from taskvec.models.embedded.model import EmbeddedVLM, EntityNameProjector
from taskvec.models.embedded.weights import WEIGHTS_DIR, load_weights, sidecar_of
from taskvec.models.families.causal_lm import CausalLMAdapter
from taskvec.models.gguf import gguf_weights_fingerprint, load_gguf_llm
from taskvec.models.vision.efficientnet_lite import EfficientNetLite0


@dataclass(frozen=True)
class Backbone:
    """A language model the embedded VLM can be built on."""

    key: str
    llm: str  # a named GGUF language model (``models.gguf.GGUF_MODELS``)
    notice: str = ""


BACKBONES: dict[str, Backbone] = {
    b.key: b
    for b in (
        Backbone("smollm2", "smollm2-135m"),
        Backbone(
            "gemma3",
            "gemma3-270m",
            notice="Gemma is provided under and subject to the Gemma Terms of Use "
            "(https://ai.google.dev/gemma/terms); see NOTICE-gemma.md.",
        ),
    )
}
#: the backbones whose LoRA-tuned variant ships as a named model (``embedded-vlm-<key>-lora``):
#: what ``taskvec align --stage lora`` trains when no backbone is named
TUNED_BACKBONES = ("gemma3",)
RECOGNISER_FILE = "recogniser"


def projector_file(backbone: str) -> str:
    return f"projector-{backbone}"


def lora_file(backbone: str) -> str:
    """The tuned variant's weights: its projector and the LLM's LoRA adapters (``lora.`` keys)."""
    return f"lora-{backbone}"


def backbone(key: str) -> Backbone:
    try:
        return BACKBONES[key]
    except KeyError:
        raise ModelSpecError(f"unknown embedded-VLM backbone {key!r}; known: {sorted(BACKBONES)}") from None


def name_token_ids(tokenizer, names: list[str]) -> list[list[int]]:
    """Each name's tokens as it follows a space (" France"), the form answers take."""
    return [tokenizer(" " + name, add_special_tokens=False)["input_ids"] for name in names]


def entity_names(entity_ids: list[str]) -> list[str]:
    from taskvec.tasks.images import name_of

    return [name_of(entity) for entity in entity_ids]


def build_encoder(state: dict[str, torch.Tensor]) -> EfficientNetLite0:
    """The fine-tuned encoder; every parameter must be in ``state`` except the ImageNet
    classifier ``_fc``, which the VLM does not use and the shipped file leaves out."""
    encoder = EfficientNetLite0()
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if unexpected or any(not key.startswith("_fc.") for key in missing):
        raise ModelSpecError(
            f"encoder weights do not fit EfficientNet-Lite0: missing {missing}, extra {unexpected}"
        )
    return encoder.eval()


def build_projector(
    state: dict[str, torch.Tensor],
    llm: CausalLMAdapter,
    entity_ids: list[str],
    tokens_per_image: int,
    rank: int,
) -> EntityNameProjector:
    projector = EntityNameProjector(len(entity_ids), llm.hidden_size, tokens_per_image, visual_rank=rank)
    projector.load_state_dict(state, strict=True)
    projector.set_name_table(
        llm.model.get_input_embeddings(), name_token_ids(llm.tokenizer, entity_names(entity_ids))
    )
    return projector.eval()


def assemble(
    llm: CausalLMAdapter,
    encoder: EfficientNetLite0,
    projector: EntityNameProjector,
    name: str,
    fingerprint: str,
    image_size: int,
    base_llm: str | None = None,
    recognition: dict | None = None,
    tuned: bool = False,
) -> EmbeddedVLMAdapter:
    """Wrap the parts into a model and its adapter (the LLM's weights are shared, not copied).
    ``tuned``: the LLM's weights were changed (LoRA), so it does not lend its text adapter."""
    image_token_id = ensure_image_token(llm.tokenizer)
    model = EmbeddedVLM(encoder, projector, llm.model, image_token_id)
    adapter = EmbeddedVLMAdapter(
        model,
        llm.tokenizer,
        name=name,
        model_id=f"EfficientNet-Lite0 encoder + entity-name projector on {llm.model_id}",
        fingerprint=fingerprint,
        image_size=image_size,
        text_adapter=None if tuned else llm,
        base_llm=base_llm,
        recognition=recognition,
        language_model_is_frozen=not tuned,
    )
    return adapter


def _fingerprint(llm: str, recogniser: str, trained: str) -> str:
    """The VLM's weights: its LLM's and the SHA-256 of its two trained files."""
    return hashlib.sha256(f"{llm}|{recogniser}|{trained}".encode()).hexdigest()[:16]


def embedded_weights_fingerprint(key: str, options=None, weights_dir=WEIGHTS_DIR, tuned: bool = False) -> str:
    """The weights fingerprint ``load_embedded_vlm`` gives, from the LLM's file and the trained
    files' sidecars alone (nothing loads; loading checks each file against its sidecar)."""
    trained = lora_file(key) if tuned else projector_file(key)
    recorded = [sidecar_of(weights_dir / stem).get("sha256", "") for stem in (RECOGNISER_FILE, trained)]
    return _fingerprint(gguf_weights_fingerprint(backbone(key).llm, options), *recorded)


def _split(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _lora_loader(key: str):
    """``models.embedded.lora.load_lora``, imported only for the tuned variant: the package imports
    without peft (a GPU machine that brings its own torch may not have it)."""
    try:
        from taskvec.models.embedded.lora import load_lora
    except ImportError as error:
        raise ModelSpecError(
            f"embedded-vlm-{key}-lora needs peft, which is not installed ({error}): pip install peft"
        ) from error
    return load_lora


def load_embedded_vlm(
    key: str, options=None, weights_dir: str | Path = WEIGHTS_DIR, tuned: bool = False
) -> EmbeddedVLMAdapter:
    """The embedded VLM on backbone ``key`` with the shipped (or given) trained weights;
    ``tuned``: the variant whose LLM carries the LoRA adapters of ``lora-<key>`` (merged)."""
    chosen = backbone(key)
    weights_dir = Path(weights_dir)
    load_lora = _lora_loader(key) if tuned else None  # before any weights load
    recogniser, recogniser_info = load_weights(weights_dir / RECOGNISER_FILE)
    trained = lora_file(key) if tuned else projector_file(key)
    projector, projector_info = load_weights(weights_dir / trained)
    stage = "lora" if tuned else "projector"
    if projector_info["recogniser_sha256"] != recogniser_info["sha256"]:
        raise ModelSpecError(
            f"{trained} was trained on another recogniser than the shipped one; "
            f"retrain it with `taskvec align --stage {stage} --backbone {key}`"
        )
    llm = load_gguf_llm(chosen.llm, options)
    if not isinstance(llm, CausalLMAdapter):
        raise ModelSpecError(f"backbone {chosen.llm} is not a text causal LM")
    if projector_info["llm_fingerprint"] != llm.weights_fingerprint:
        raise ModelSpecError(
            f"{trained} was trained on other {chosen.llm} weights "
            f"({projector_info['llm_fingerprint']} != {llm.weights_fingerprint}); "
            f"retrain with `taskvec align --stage {stage}`"
        )
    entity_ids = recogniser_info["entity_ids"]
    # the tuned variant's sidecar holds the LoRA stage's config and the projector's it started from
    config = projector_info["projector_config"] if tuned else projector_info["config"]
    if tuned:
        lora = projector_info["config"]
        layers = lora.get("layers")  # absent from sidecars written before adapters could skip layers
        load_lora(
            llm.model,
            _split(projector, "lora."),
            lora["rank"],
            lora["alpha"],
            tuple(lora["targets"]),
            None if layers is None else tuple(layers),
        )
    encoder = build_encoder(_split(recogniser, "encoder."))
    # the projector's classifier is the recogniser's entity head; the rest was trained on the LLM
    projector_state = {
        "classifier.weight": recogniser["head.weight"],
        "classifier.bias": recogniser["head.bias"],
        **_split(projector, "projector."),
    }
    projector_module = build_projector(
        projector_state, llm, entity_ids, config["tokens_per_image"], config["visual_rank"]
    )
    fingerprint = _fingerprint(llm.weights_fingerprint, recogniser_info["sha256"], projector_info["sha256"])
    adapter = assemble(
        llm,
        encoder,
        projector_module,
        name=f"embedded-vlm-{key}" + ("-lora" if tuned else ""),
        fingerprint=fingerprint,
        image_size=recogniser_info["config"]["image_size"],
        base_llm=chosen.llm,
        recognition=projector_info.get("recognition_strict"),
        tuned=tuned,
    )
    return adapter
