"""Stage 2 with a tuned language model: projector and LoRA adapters on the LLM, trained together.

LLaVA trains its projector against a frozen LLM, then tunes projector and LLM together on
instruction data. Here the first step is the shipped projector (``taskvec align --stage
projector``), which this stage starts from; the second tunes it further together with LoRA
adapters on the LLM's decoder (``models.embedded.lora``), on the same recogniser's features.

What it trains on — names of the image suite's entities, what can be computed from a name, and
optionally general text; never a task's labels or splits:

- **image sequences** (cross-entropy on the query's answer): ``Q: <image>\\nA: answer`` examples
  followed by an image query, as stage 2 builds them; the demonstrations are images or, in
  ``cross_modal_share`` of the sequences, text (``Q: France\\nA: ...``), so the LLM learns to carry
  a mapping shown in text over to an image query. The mapping (a *relation*) is the name itself
  in ``name_share`` of the sequences and in every bare query (no example shows another
  relation), otherwise one of ``relations`` (by default all of ``RELATIONS``): the name in
  capitals, its first letter, or the suite's domain of the entity (``flags``, ``animals``,
  ``foods``, ``other``). None of these is a task's label.
- **text sequences** (distillation, so text ICL is kept): the same relations on names written as
  text, demonstrations and query; the loss is the KL divergence from the *frozen* LLM's
  next-token distribution (adapters switched off) to the tuned one's, at every position that
  predicts an answer's first token. No target comes from data: the teacher is the bare LLM.
- **category sequences** (off by default; cross-entropy on the answer), text ICL whose answers
  the suite's manifest gives, as LLaVA tunes its LLM on text with answers of its own: the entity's
  Unicode subcategory or group, or its suite domain (``category_relations``), one relation per
  sequence, shown by its demonstrations.
- **prose** (off by default; cross-entropy on every next token): windows of general English text,
  the language reference pydoc ships with Python, as LLaVA mixes text-only data into the LLM's
  tuning.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from taskvec.align.projector import AnswerBatch, TemplateNames, _lm_logits, answer_loss
from taskvec.align.recogniser import RecognitionData
from taskvec.config import Seed
from taskvec.models.embedded.adapter import EmbeddedVLMAdapter
from taskvec.models.embedded.lora import ATTENTION_TARGETS, adapters_disabled, add_lora
from taskvec.prompts.template import get_template


def _upper(name: str, domain: str) -> str:
    return name.upper()


def _initial(name: str, domain: str) -> str:
    return name[:1]


def _domain(name: str, domain: str) -> str:
    return domain


#: what an answer can be besides the name; computed from the name or the suite's domain only
RELATIONS: dict[str, Callable[[str, str], str]] = {"upper": _upper, "initial": _initial, "domain": _domain}
#: each relation as the adapters' account of their training data says it
RELATION_WORDS = {"upper": "in capitals", "initial": "its first letter", "domain": "its suite domain"}
Relation = Literal["upper", "initial", "domain"]


#: what a category sequence can ask of an entity, from the suite's manifest: its Unicode
#: subcategory (``animal mammal``), Unicode group (``animals & nature``) or suite domain
CategoryRelation = Literal["subcategory", "group", "domain"]


class LoraStageConfig(BaseModel):
    """Everything the LoRA stage depends on; part of the shipped adapter's checksum."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank: int = Field(default=8, ge=1)
    alpha: float = 16.0
    #: attention only: adapters on the MLPs too made the tuned LLM answer an item's own name more
    #: often on text and cost text ICL (docs/embedded-vlm.md, the recipes tried)
    targets: tuple[str, ...] = Field(default=ATTENTION_TARGETS, min_length=1)
    #: decoder layers that get adapters (None: all of them)
    layers: tuple[int, ...] | None = Field(default=None, min_length=1)
    steps: int = Field(default=40, ge=1)
    batch_size: int = Field(default=8, ge=1)  # image sequences per step
    text_batch_size: int = Field(default=8, ge=0)  # text sequences per step (distillation)
    lr_lora: float = Field(default=2e-3, gt=0)
    lr_projector: float = Field(default=1e-3, gt=0)
    max_context_examples: int = 4
    answer_tokens: int = 4
    #: image sequences whose demonstrations are text, not images
    cross_modal_share: float = Field(default=0.9, ge=0, le=1)
    #: sequences whose relation is the name itself (the rest draw from ``relations``)
    name_share: float = Field(default=0.4, ge=0, le=1)
    #: the ``RELATIONS`` the other sequences draw from; ``upper`` and ``initial`` are made from the
    #: query's own name, so they train copying from the query, as the name itself does
    relations: tuple[Relation, ...] = Field(default=("upper", "initial", "domain"), min_length=1)
    distill_weight: float = 10.0
    #: where the text sequences are distilled: ``answers`` (each answer's first token) or
    #: ``every_token`` (the next-token distribution at every position of the sequence)
    distill_at: Literal["answers", "every_token"] = "answers"
    #: text ICL sequences per step on what the suite's manifest says of an entity, trained on
    #: their answers
    category_batch_size: int = Field(default=0, ge=0)
    category_weight: float = 1.0
    #: what each category sequence asks, one drawn per sequence (``CategoryRelation``): with
    #: more than one, the query alone no longer says what to answer; the demonstrations do
    category_relations: tuple[CategoryRelation, ...] = Field(default=("subcategory",), min_length=1)
    #: suite domains whose entities the category sequences draw from (None: every domain)
    category_domains: tuple[str, ...] | None = Field(default=None, min_length=1)
    #: windows of general English text per step, trained on every next token (LLaVA's stage 2
    #: mixes text-only data with its own answers into the LLM's tuning); see :func:`prose_ids`
    prose_batch_size: int = Field(default=0, ge=0)
    prose_weight: float = 1.0
    prose_tokens: int = 64
    templates: TemplateNames = ("spaced", "paper")
    seed: Seed = 0


def _relation(rng: random.Random, config: LoraStageConfig) -> Callable[[str, str], str] | None:
    """None: the name itself."""
    return None if rng.random() < config.name_share else RELATIONS[rng.choice(sorted(config.relations))]


def _answer(relation, name: str, domain: str) -> str:
    return name if relation is None else relation(name, domain)


def sample_image_sequences(
    adapter: EmbeddedVLMAdapter,
    data: RecognitionData,
    names: list[str],
    domains: list[str],
    config: LoraStageConfig,
    rng: random.Random,
    copies: int,
) -> list[tuple[list[int], list[int], list[int]]]:
    """Image-query sequences with image or text demonstrations; see :class:`AnswerBatch`."""
    from PIL import Image

    placeholder = Image.new("RGB", (1, 1))  # stands for an image while tokenising
    n = len(data.labels)
    sequences = []
    for _ in range(config.batch_size):
        template = get_template(rng.choice(config.templates))
        relation = _relation(rng, config)
        text_demos = rng.random() < config.cross_modal_share
        rows = [rng.randrange(n) for _ in range(rng.randint(0, config.max_context_examples) + 1)]
        if len(rows) == 1:
            relation = None  # a bare query shows no relation: its answer is the name
        entities = [int(data.labels[r]) for r in rows]
        demos = [
            (names[e] if text_demos else placeholder, _answer(relation, names[e], domains[e]))
            for e in entities[:-1]
        ]
        ids, images = adapter.prompt_ids(template.icl(demos, placeholder))
        query = entities[-1]
        answer_text = template.answer_prefix + _answer(relation, names[query], domains[query])
        answer = adapter.tokenizer(answer_text, add_special_tokens=False)["input_ids"][: config.answer_tokens]
        image_rows = rows if not text_demos else rows[-1:]
        feature_rows = [rng.randrange(copies) * n + r for r in image_rows]
        assert len(images) == len(feature_rows)
        sequences.append((ids, feature_rows, answer))
    return sequences


class TextBatch:
    """Text-only ICL sequences (left-aligned, right-padded) and the positions distilled: those that
    predict each example's and the query's first answer token (their delimiters), or with
    ``every_token`` every position of each sequence."""

    def __init__(
        self,
        adapter: EmbeddedVLMAdapter,
        prompts: list[tuple[list[int], list[int]]],
        every_token: bool = False,
    ):
        # each prompt: (token ids, lengths of its queries' prefixes, each ending at a delimiter)
        pad = int(adapter.tokenizer.pad_token_id)
        width = max(len(ids) for ids, _ in prompts)
        device = adapter.device
        self.input_ids = torch.full((len(prompts), width), pad, device=device)
        self.attention_mask = torch.zeros(len(prompts), width, dtype=torch.long, device=device)
        self.positions = torch.zeros(len(prompts), width, dtype=torch.bool, device=device)
        for row, (ids, ends) in enumerate(prompts):
            self.input_ids[row, : len(ids)] = torch.tensor(ids, device=device)
            self.attention_mask[row, : len(ids)] = 1
            for end in ends:
                self.positions[row, end - 1] = True
        if every_token:
            self.positions = self.attention_mask.bool()


def sample_text_prompts(
    adapter: EmbeddedVLMAdapter,
    names: list[str],
    domains: list[str],
    config: LoraStageConfig,
    rng: random.Random,
) -> list[tuple[list[int], list[int]]]:
    """Text ICL prompts of a relation on entity names: token ids (examples then a query) and the
    prefix lengths that end at each delimiter (where a token of the prefix's own tokenisation
    differs from the whole prompt's, that position is left out)."""
    prompts = []
    for _ in range(config.text_batch_size):
        template = get_template(rng.choice(config.templates))
        relation = _relation(rng, config)
        entities = [rng.randrange(len(names)) for _ in range(rng.randint(1, config.max_context_examples) + 1)]
        demos = [(names[e], _answer(relation, names[e], domains[e])) for e in entities[:-1]]
        ids = adapter.prompt_ids(template.icl(demos, names[entities[-1]]))[0]
        ends = []
        for k in range(len(demos) + 1):
            query = demos[k][0] if k < len(demos) else names[entities[-1]]
            prefix = adapter.prompt_ids(template.icl(demos[:k], query))[0]
            if ids[: len(prefix)] == prefix:
                ends.append(len(prefix))
        prompts.append((ids, ends))
    return prompts


def category(label: str) -> str:
    """A manifest's subcategory or group as an answer: ``animal-mammal`` -> ``animal mammal``,
    ``Animals & Nature`` -> ``animals & nature``."""
    return label.replace("-", " ").lower()


def sample_category_sequences(
    adapter: EmbeddedVLMAdapter,
    names: list[str],
    categories: dict[str, list[str]],
    config: LoraStageConfig,
    rng: random.Random,
    pool: list[int] | None = None,
) -> list[tuple[list[int], list[int], list[int]]]:
    """Text ICL sequences whose answers are one of ``config.category_relations`` of the entities in
    ``pool`` (default: all); ``categories``: each relation's answer per entity. See
    :class:`AnswerBatch` (no image rows)."""
    pool = list(range(len(names))) if pool is None else pool
    missing = set(config.category_relations) - set(categories)
    if missing:
        raise ValueError(f"no answers for the category relations {sorted(missing)}")
    sequences = []
    for _ in range(config.category_batch_size):
        template = get_template(rng.choice(config.templates))
        relation = config.category_relations[0]
        if len(config.category_relations) > 1:  # one relation draws nothing: its runs stay as they were
            relation = rng.choice(config.category_relations)
        answers = categories[relation]
        entities = [rng.choice(pool) for _ in range(rng.randint(1, config.max_context_examples) + 1)]
        demos = [(names[e], answers[e]) for e in entities[:-1]]
        ids = adapter.prompt_ids(template.icl(demos, names[entities[-1]]))[0]
        answer_text = template.answer_prefix + answers[entities[-1]]
        answer = adapter.tokenizer(answer_text, add_special_tokens=False)["input_ids"][: config.answer_tokens]
        sequences.append((ids, [], answer))
    return sequences


def prose_ids(tokenizer) -> list[int]:
    """General English text for the prose loss: the language reference's topics that pydoc ships
    with every Python (no download, nothing of a task), as token ids."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key] for key in sorted(topics))
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def sample_prose(ids: list[int], config: LoraStageConfig, rng: random.Random) -> list[list[int]]:
    """``config.prose_batch_size`` windows of ``config.prose_tokens`` consecutive tokens."""
    if len(ids) <= config.prose_tokens:
        raise ValueError(f"the prose text has {len(ids)} tokens, fewer than a window's {config.prose_tokens}")
    starts = [rng.randrange(len(ids) - config.prose_tokens) for _ in range(config.prose_batch_size)]
    return [ids[start : start + config.prose_tokens] for start in starts]


def prose_loss(adapter: EmbeddedVLMAdapter, windows: list[list[int]]) -> torch.Tensor:
    """Cross-entropy of every next token of the windows, each read after a BOS as a document is."""
    llm = adapter.model.llm
    bos = adapter.tokenizer.bos_token_id
    rows = [([] if bos is None else [bos]) + window for window in windows]
    input_ids = torch.tensor(rows, device=adapter.device)
    hidden = llm.get_decoder()(input_ids=input_ids).last_hidden_state
    logits = _lm_logits(llm, hidden[:, :-1]).float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1))


def distillation_loss(adapter: EmbeddedVLMAdapter, batch: TextBatch) -> torch.Tensor:
    """KL(frozen LLM || tuned LLM) of the next token at ``batch.positions``."""
    llm = adapter.model.llm
    decoder = llm.get_decoder()
    with torch.no_grad(), adapters_disabled(llm):
        hidden = decoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        teacher = F.log_softmax(_lm_logits(llm, hidden[batch.positions]).float(), dim=-1)
    hidden = decoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    student = F.log_softmax(_lm_logits(llm, hidden[batch.positions]).float(), dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean")


@torch.enable_grad()
def train_lora(
    adapter: EmbeddedVLMAdapter,
    features: torch.Tensor,
    data: RecognitionData,
    names: list[str],
    domains: list[str],
    config: LoraStageConfig,
    on_step: Callable[[int, int, float], None] | None = None,
    categories: dict[str, list[str]] | None = None,
    prose: list[int] | None = None,
) -> list[dict]:
    """Add LoRA adapters to ``adapter.model.llm`` and train them with the projector, in place
    (the adapters stay unmerged); returns the loss log. ``features``: ``[copies, n, F]``;
    ``categories``: for each category relation, each entity's answer (needed when
    ``config.category_batch_size`` > 0); ``prose``: token ids of general text (needed when
    ``config.prose_batch_size`` > 0, see :func:`prose_ids`)."""
    if config.category_batch_size and categories is None:
        raise ValueError("category_batch_size > 0 needs the entities' categories")
    if config.prose_batch_size and prose is None:
        raise ValueError("prose_batch_size > 0 needs the prose's token ids")
    category_pool = [
        i
        for i, domain in enumerate(domains)
        if config.category_domains is None or domain in config.category_domains
    ]
    if config.category_batch_size and not category_pool:
        raise ValueError(f"no entity of the domains {config.category_domains} for the category sequences")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    model = adapter.model
    copies = features.shape[0]
    flat = features.reshape(-1, features.shape[-1]).to(adapter.device)
    model.encoder.requires_grad_(False)
    model.llm.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # the adapters' initialisation follows the seed alone
        add_lora(model.llm, config.rank, config.alpha, config.targets, config.layers)
    projector = model.projector
    projector.classifier.requires_grad_(False)
    lora = [p for p in model.llm.parameters() if p.requires_grad]
    projector_params = [p for p in projector.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [{"params": lora, "lr": config.lr_lora}, {"params": projector_params, "lr": config.lr_projector}],
        weight_decay=0.0,
    )
    base_lrs = [config.lr_lora, config.lr_projector]
    log = []
    started = time.perf_counter()
    for step in range(config.steps):
        scale = min(1.0, (step + 1) / 10) * 0.5 * (1 + math.cos(math.pi * step / config.steps))
        for group, base in zip(optimiser.param_groups, base_lrs, strict=True):
            group["lr"] = base * scale
        batch = AnswerBatch(
            adapter, sample_image_sequences(adapter, data, names, domains, config, rng, copies)
        )
        image_loss = answer_loss(adapter, batch, flat)
        text_loss = distillation_loss(
            adapter,
            TextBatch(
                adapter,
                sample_text_prompts(adapter, names, domains, config, rng),
                every_token=config.distill_at == "every_token",
            ),
        )
        loss = image_loss + config.distill_weight * text_loss
        category_loss = None
        if config.category_batch_size:
            category_batch = sample_category_sequences(adapter, names, categories, config, rng, category_pool)
            category_loss = answer_loss(adapter, AnswerBatch(adapter, category_batch), flat)
            loss = loss + config.category_weight * category_loss
        general_loss = None
        if config.prose_batch_size:
            general_loss = prose_loss(adapter, sample_prose(prose, config, rng))
            loss = loss + config.prose_weight * general_loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        log.append(
            {
                "stage": "lora",
                "step": step,
                "loss": round(loss.item(), 4),
                "image_loss": round(image_loss.item(), 4),
                "text_kl": round(text_loss.item(), 5),
                **({} if category_loss is None else {"category_loss": round(category_loss.item(), 4)}),
                **({} if general_loss is None else {"prose_loss": round(general_loss.item(), 4)}),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        if on_step is not None:
            on_step(step, config.steps, loss.item())
    adapter.clear_image_cache()
    return log
