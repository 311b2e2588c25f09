"""The LoRA stage of alignment on a tiny Gemma 3 LM: adapters that start as a no-op, a teacher
that is the bare LLM, training that learns, and stored adapters that load back merged."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from helpers.tinyllm import tiny_text_lm

from taskvec.align.lora import (
    RELATIONS,
    LoraStageConfig,
    TextBatch,
    distillation_loss,
    prose_ids,
    prose_loss,
    sample_category_sequences,
    sample_image_sequences,
    sample_prose,
    sample_text_prompts,
    train_lora,
)
from taskvec.align.projector import AnswerBatch, answer_loss
from taskvec.align.recogniser import RecognitionData
from taskvec.errors import ModelSpecError
from taskvec.models.embedded.load import assemble
from taskvec.models.embedded.lora import adapters_disabled, add_lora, load_lora, lora_layers, lora_state
from taskvec.models.embedded.model import EntityNameProjector
from taskvec.models.vision.efficientnet_lite import FEATURE_DIM, EfficientNetLite0
from taskvec.prompts.template import get_template

NAMES = ["France", "Peru", "dog", "cat", "rice", "apple"]
DOMAINS = ["flags", "flags", "animals", "animals", "foods", "foods"]


def _text_logits(llm, prompts) -> torch.Tensor:
    encoded = llm.encode(prompts)
    with torch.no_grad():
        return llm.forward(encoded).logits


def _prompts():
    template = get_template("spaced")
    return [template.icl([("France", "Paris")], "Peru"), template.query("dog")]


def test_fresh_adapters_change_nothing_and_switched_off_give_the_bare_llm():
    llm = tiny_text_lm("gemma3-hybrid")
    bare = _text_logits(llm, _prompts())
    add_lora(llm.model, rank=4, alpha=8, targets=("q_proj", "v_proj", "down_proj"))
    assert len(lora_layers(llm.model)) == 3 * llm.num_layers
    assert all("lora_" in n for n, p in llm.model.named_parameters() if p.requires_grad)
    torch.testing.assert_close(_text_logits(llm, _prompts()), bare)  # B starts at zero
    for name, tensor in lora_state(llm.model).items():
        if "lora_B" in name:
            tensor.normal_()
    assert not torch.allclose(_text_logits(llm, _prompts()), bare)
    with adapters_disabled(llm.model):
        torch.testing.assert_close(_text_logits(llm, _prompts()), bare, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(_text_logits(llm, _prompts()), bare)  # on again afterwards


def _randomised_adapters(llm, targets, layers=None):
    """Adapters with random weights on a copy of ``llm.model``: the tuned copy, its adapter
    tensors and its logits on ``_prompts()``; ``llm`` is left holding the untouched model."""
    fresh = llm.model
    llm.model = copy.deepcopy(fresh)
    add_lora(llm.model, rank=4, alpha=8, targets=targets, layers=layers)
    state = lora_state(llm.model)
    for tensor in state.values():
        tensor.normal_(std=0.2)
    tuned_model, tuned = llm.model, _text_logits(llm, _prompts())
    llm.model = fresh
    return tuned_model, state, tuned


def test_stored_adapters_load_back_merged_and_misfits_are_refused():
    llm = tiny_text_lm("gemma3-hybrid")
    targets = ("q_proj", "o_proj", "up_proj")
    fresh = llm.model
    _, state, tuned = _randomised_adapters(llm, targets)
    load_lora(fresh, {k: v.clone() for k, v in state.items()}, rank=4, alpha=8, targets=targets)
    assert all(layer.merged for layer in lora_layers(fresh))
    torch.testing.assert_close(_text_logits(llm, _prompts()), tuned, atol=1e-5, rtol=1e-4)
    other = tiny_text_lm("gemma3-hybrid").model
    with pytest.raises(ModelSpecError, match="do not fit"):
        load_lora(other, dict(list(state.items())[1:]), rank=4, alpha=8, targets=targets)


def test_adapters_on_chosen_layers_sit_only_there_and_load_back_only_there():
    llm = tiny_text_lm("gemma3-hybrid")
    chosen = (0,)
    targets = ("q_proj", "v_proj")
    fresh = llm.model
    tuned_model, state, tuned = _randomised_adapters(llm, targets, layers=chosen)
    assert len(lora_layers(tuned_model)) == len(targets) * len(chosen) < len(targets) * llm.num_layers
    assert state and all(".layers.0." in name for name in state)
    with pytest.raises(ModelSpecError, match="do not fit"):  # recorded on one layer, loaded on all
        load_lora(copy.deepcopy(fresh), dict(state), rank=4, alpha=8, targets=targets)
    copies = {k: v.clone() for k, v in state.items()}
    load_lora(fresh, copies, rank=4, alpha=8, targets=targets, layers=chosen)
    torch.testing.assert_close(_text_logits(llm, _prompts()), tuned, atol=1e-5, rtol=1e-4)


def _tiny_vlm():
    llm = tiny_text_lm("gemma3-hybrid")
    projector = EntityNameProjector(len(NAMES), llm.hidden_size, tokens_per_image=2, visual_rank=4)
    projector.set_name_table(
        llm.model.get_input_embeddings(), [llm.tokenizer(" " + n)["input_ids"][-2:] for n in NAMES]
    )
    adapter = assemble(llm, EfficientNetLite0(), projector, "tiny-vlm-lora", "test", 32, tuned=True)
    data = RecognitionData(
        images=torch.zeros(12, 3, 8, 8),
        labels=torch.arange(12) % len(NAMES),
        flippable=torch.ones(12, dtype=torch.bool),
        entity_ids=NAMES,
    )
    return adapter, data


def test_training_sequences_hold_text_demonstrations_and_relations_of_names_only():
    adapter, data = _tiny_vlm()
    config = LoraStageConfig(batch_size=40, cross_modal_share=0.5, name_share=0.4)
    sequences = sample_image_sequences(adapter, data, NAMES, DOMAINS, config, random.Random(0), copies=2)
    image_id = adapter.model.image_token_id
    images_per_sequence = [
        sum(t == image_id for t in ids) // adapter.tokens_per_image for ids, _, _ in sequences
    ]
    assert all(count == len(rows) for count, (_, rows, _) in zip(images_per_sequence, sequences, strict=True))
    # some sequences have text demonstrations before their one image query, others image demos
    demos_in_text = [rows for (ids, rows, _), n in zip(sequences, images_per_sequence, strict=True) if n == 1]
    assert demos_in_text and len(demos_in_text) < len(sequences)
    answers = {adapter.tokenizer.decode(answer) for _, _, answer in sequences}
    allowed = {
        f(n, d)[:3]
        for n, d in zip(NAMES, DOMAINS, strict=True)
        for f in [*RELATIONS.values(), lambda n, d: n]
    }
    assert {a.strip()[:3] for a in answers} <= {a[:3] for a in allowed}
    prompts = sample_text_prompts(adapter, NAMES, DOMAINS, config, random.Random(1))
    batch = TextBatch(adapter, prompts)
    # one distilled position per example and query, each at a delimiter
    assert int(batch.positions.sum()) == sum(len(ends) for _, ends in prompts) > len(prompts)
    delimiter = batch.input_ids[batch.positions]
    assert all(adapter.tokenizer.decode([int(t)]).endswith(":") for t in delimiter)
    # distilled at every token: every real position of each sequence, and no padding
    everywhere = TextBatch(adapter, prompts, every_token=True)
    assert torch.equal(everywhere.positions, everywhere.attention_mask.bool())
    assert int(everywhere.positions.sum()) == sum(len(ids) for ids, _ in prompts)
    assert bool((everywhere.positions | ~batch.positions).all())  # the delimiters among them


def test_relations_chosen_leave_out_the_copies_of_the_query_and_the_default_draws_all_three():
    """``relations=("domain",)``: every answer is the name (bare queries, ``name_share``) or the
    domain, never the name in capitals or its first letter; the default draws all three."""
    adapter, data = _tiny_vlm()
    domain_only = LoraStageConfig(batch_size=60, name_share=0.2, relations=("domain",), answer_tokens=16)
    sequences = sample_image_sequences(adapter, data, NAMES, DOMAINS, domain_only, random.Random(3), copies=1)
    answers = {adapter.tokenizer.decode(answer).strip() for _, _, answer in sequences}
    assert answers & set(DOMAINS) and answers & set(NAMES)
    assert answers <= set(NAMES) | set(DOMAINS)
    every = LoraStageConfig(batch_size=60, name_share=0.2, answer_tokens=16)
    sequences = sample_image_sequences(adapter, data, NAMES, DOMAINS, every, random.Random(3), copies=1)
    answers = {adapter.tokenizer.decode(answer).strip() for _, _, answer in sequences}
    assert answers & {n.upper() for n in NAMES} and answers & {n[0] for n in NAMES} and answers & set(DOMAINS)


def test_a_few_lora_steps_lower_the_image_loss_and_move_text_logits_off_the_bare_llm():
    torch.manual_seed(0)
    adapter, data = _tiny_vlm()
    features = torch.randn(1, len(data.labels), FEATURE_DIM)
    config = LoraStageConfig(
        rank=4, steps=15, batch_size=8, text_batch_size=4, lr_lora=2e-2, lr_projector=2e-2, seed=2
    )
    fixed = AnswerBatch(
        adapter, sample_image_sequences(adapter, data, NAMES, DOMAINS, config, random.Random(9), copies=1)
    )
    flat = features[0]
    with torch.no_grad():
        before = float(answer_loss(adapter, fixed, flat))
    bare = _text_logits(adapter, _prompts())
    log = train_lora(adapter, features, data, NAMES, DOMAINS, config)
    with torch.no_grad():
        after = float(answer_loss(adapter, fixed, flat))
        kl = float(
            distillation_loss(
                adapter,
                TextBatch(adapter, sample_text_prompts(adapter, NAMES, DOMAINS, config, random.Random(3))),
            )
        )
    assert len(log) == config.steps and {"image_loss", "text_kl"} <= set(log[0])
    assert after < before
    assert kl >= 0
    assert not torch.allclose(_text_logits(adapter, _prompts()), bare)
    with adapters_disabled(adapter.model.llm):
        torch.testing.assert_close(_text_logits(adapter, _prompts()), bare, atol=1e-6, rtol=1e-6)


SUBCATEGORIES = ["country flag", "country flag", "animal mammal", "animal mammal", "food asian", "food fruit"]
CATEGORIES = {"subcategory": SUBCATEGORIES, "domain": DOMAINS}


def test_category_sequences_are_text_only_answered_by_the_category_and_training_lowers_their_loss():
    torch.manual_seed(0)
    adapter, data = _tiny_vlm()
    config = LoraStageConfig(
        rank=4, steps=15, batch_size=4, text_batch_size=2, category_batch_size=8, lr_lora=2e-2, seed=3
    )
    sequences = sample_category_sequences(adapter, NAMES, CATEGORIES, config, random.Random(4))
    assert len(sequences) == config.category_batch_size
    assert all(rows == [] and adapter.model.image_token_id not in ids for ids, rows, _ in sequences)
    answers = {adapter.tokenizer.decode(answer).strip() for _, _, answer in sequences}
    assert answers and all(any(c.startswith(a) for c in SUBCATEGORIES) for a in answers)
    assert not answers & set(NAMES)  # the answer never repeats the name
    animals = [i for i, domain in enumerate(DOMAINS) if domain == "animals"]
    only_animals = sample_category_sequences(adapter, NAMES, CATEGORIES, config, random.Random(5), animals)
    decoded = {adapter.tokenizer.decode(answer).strip() for _, _, answer in only_animals}
    assert decoded and all(a and "animal mammal".startswith(a) for a in decoded)  # cut to answer_tokens
    with pytest.raises(ValueError, match="no entity"):
        train_lora(
            adapter,
            torch.zeros(1, len(data.labels), FEATURE_DIM),
            data,
            NAMES,
            DOMAINS,
            config.model_copy(update={"category_domains": ("plants",)}),
            categories=CATEGORIES,
        )
    with pytest.raises(ValueError, match="group"):
        sample_category_sequences(
            adapter,
            NAMES,
            CATEGORIES,
            config.model_copy(update={"category_relations": ("group",)}),
            random.Random(4),
        )
    fixed = AnswerBatch(adapter, sequences)  # text only: no feature rows
    features = torch.randn(1, len(data.labels), FEATURE_DIM)
    with torch.no_grad():
        before = float(answer_loss(adapter, fixed, features[0]))
    with pytest.raises(ValueError, match="categories"):
        train_lora(adapter, features, data, NAMES, DOMAINS, config)
    log = train_lora(adapter, features, data, NAMES, DOMAINS, config, categories=CATEGORIES)
    with torch.no_grad():
        after = float(answer_loss(adapter, fixed, features[0]))
    assert "category_loss" in log[0] and after < before


def test_category_sequences_of_several_relations_draw_one_per_sequence_shown_by_its_demonstrations():
    adapter, _ = _tiny_vlm()
    config = LoraStageConfig(
        category_batch_size=40, category_relations=("subcategory", "domain"), templates=("paper",)
    )
    sequences = sample_category_sequences(adapter, NAMES, CATEGORIES, config, random.Random(6))
    asked = []
    for ids, _, answer in sequences:
        prompt = adapter.tokenizer.decode(ids)
        demo_answers = {line[2:] for line in prompt.splitlines() if line.startswith("A:") and line[2:]}
        relation = "domain" if demo_answers <= set(DOMAINS) else "subcategory"
        assert demo_answers <= set(CATEGORIES[relation])  # the demonstrations show one relation
        assert any(a.startswith(adapter.tokenizer.decode(answer).strip()) for a in CATEGORIES[relation])
        asked.append(relation)
    assert set(asked) == {"subcategory", "domain"}  # both drawn


def test_prose_windows_are_general_text_and_training_on_them_lowers_their_loss():
    """The prose loss: consecutive tokens of the language reference pydoc ships, none of a task's
    items, each next token trained on; off by default, and refused without its text."""
    torch.manual_seed(0)
    adapter, data = _tiny_vlm()
    ids = prose_ids(adapter.tokenizer)
    assert len(ids) > 10_000
    config = LoraStageConfig(
        rank=4, steps=15, batch_size=2, text_batch_size=2, prose_batch_size=4, prose_tokens=24, lr_lora=2e-2
    )
    windows = sample_prose(ids, config, random.Random(1))
    assert len(windows) == 4 and all(len(w) == 24 for w in windows)
    assert all(" ".join(map(str, w)) in " ".join(map(str, ids)) for w in windows)  # consecutive
    text = adapter.tokenizer.decode(windows[0])
    assert text.strip() and not set(NAMES) & set(text.split())
    fixed = sample_prose(ids, config, random.Random(2))
    features = torch.randn(1, len(data.labels), FEATURE_DIM)
    with torch.no_grad():
        before = float(prose_loss(adapter, fixed))
    with pytest.raises(ValueError, match="prose"):
        train_lora(adapter, features, data, NAMES, DOMAINS, config)
    log = train_lora(adapter, features, data, NAMES, DOMAINS, config, prose=ids)
    with torch.no_grad():
        after = float(prose_loss(adapter, fixed))
    assert "prose_loss" in log[0] and after < before
    off = config.model_copy(update={"prose_batch_size": 0, "steps": 1})
    assert "prose_loss" not in train_lora(_tiny_vlm()[0], features, data, NAMES, DOMAINS, off)[0]
