"""How well the embedded VLM sees: recognition of the task domains' entities, per style.

Recognition is asked the way the experiments ask: a bare image query (``Q: <image>\\nA:``), the
first greedy token scored *strictly* against the entity name's own first tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from taskvec.evaluation.metrics import strict_match
from taskvec.models.adapter import ModelAdapter
from taskvec.models.vision.efficientnet_lite import EfficientNetLite0, preprocess
from taskvec.patching.patch import first_token_ids
from taskvec.prompts.template import get_template
from taskvec.tasks import images as suite

#: the fixed recognition sample whose accuracy the shipped weights must reproduce (tests)
CHECK_SAMPLE = {"styles": ("twemoji", "openmoji"), "per_domain": 8}


def domain_images(style: str, domain: str, limit: int | None = None) -> list[tuple[str, str]]:
    """``(entity, name)`` of every entity of ``domain`` with a task image in ``style``."""
    chosen = [(e, suite.name_of(e)) for e in suite.entities(domain) if style in suite.styles_for(e)]
    return chosen[:limit] if limit else chosen


def recognise(
    adapter: ModelAdapter, pairs: list[tuple[str, str]], style: str, template: str = "spaced"
) -> list[dict]:
    """First-token recognition of each ``(entity, name)`` image in ``style``."""
    query = get_template(template).query
    prompts = [query(suite.load_image(entity, style)) for entity, _ in pairs]
    predicted = first_token_ids(adapter, prompts)
    rows = []
    for (entity, name), token in zip(pairs, predicted, strict=True):
        text = adapter.decode([token])
        rows.append(
            {
                "entity": entity,
                "name": name,
                "style": style,
                "prediction": text,
                "correct": strict_match(text, adapter.first_tokens_of(name)),
            }
        )
    return rows


def recognition_table(
    adapter: ModelAdapter,
    styles: tuple[str, ...] = suite.STYLES,
    domains: tuple[str, ...] = suite.TASK_DOMAINS,
    template: str = "spaced",
    limit: int | None = None,
) -> pd.DataFrame:
    """Per-image rows for every (style, domain) that has images; see :func:`summarise`."""
    rows = []
    for style in styles:
        for domain in domains:
            pairs = domain_images(style, domain, limit)
            if pairs:
                rows += [{**r, "domain": domain} for r in recognise(adapter, pairs, style, template)]
    return pd.DataFrame(rows)


def check_sample_accuracy(adapter: ModelAdapter) -> dict:
    """Recognition on a small fixed sample (the shipped weights must reproduce it exactly)."""
    sample = {}
    for style in CHECK_SAMPLE["styles"]:
        for domain in suite.TASK_DOMAINS:
            rows = recognition_table(adapter, (style,), (domain,), limit=CHECK_SAMPLE["per_domain"])
            if len(rows):
                sample[f"{style}/{domain}"] = int(rows.correct.sum())
    return sample


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy as a style x domain table (NaN where a style has no image of a domain)."""
    return rows.groupby(["style", "domain"]).correct.mean().unstack("domain").round(3)


@torch.no_grad()
def classifier_accuracy(
    encoder: EfficientNetLite0,
    head: nn.Module,
    image_size: int,
    styles: Sequence[str] = suite.STYLES,
    domains: Sequence[str] = suite.TASK_DOMAINS,
) -> pd.DataFrame:
    """Stage-1 check without the LLM: top-1 entity accuracy per (style, domain), computed on the
    device the encoder is on."""
    device = next(encoder.parameters()).device
    entity_index = {e: i for i, e in enumerate(suite.entities())}
    table: dict[str, dict[str, float]] = {}
    for style in styles:
        for domain in domains:
            pairs = domain_images(style, domain)
            if not pairs:
                continue
            pixels = preprocess([suite.load_image(e, style) for e, _ in pairs], size=image_size)
            predicted = head(encoder.forward_pooled(pixels.to(device))).argmax(-1)
            truth = torch.tensor([entity_index[e] for e, _ in pairs], device=predicted.device)
            table.setdefault(style, {})[domain] = round(float((predicted == truth).float().mean()), 3)
    return pd.DataFrame(table).T
