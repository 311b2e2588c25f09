"""A researcher's own model in memory: taskvec's numbers follow its weights as they are now, do
not depend on its train / eval mode, and a wrong argument gets one line, not a traceback."""

import copy

import numpy as np
import pytest
import torch
from helpers.families.llava import build_llava
from helpers.tinyparts import make_tokenizer, seeded, tiny_text_config
from tokenizers import processors
from transformers import AutoConfig, AutoModelForCausalLM

import taskvec
from taskvec.errors import ConfigError, LayerError, ModelSpecError, VectorMismatchError
from taskvec.models.loading import LoadOptions
from taskvec.patching.sweep import sweep
from taskvec.prompts.template import PAPER

PROMPTS = [PAPER.icl([("a", "b"), ("c", "d")], q) for q in ("x", "yy", "zzz")]


def _hf_llama(seed: int = 3, **config):
    tokenizer = make_tokenizer([])
    settings = tiny_text_config(hidden_size=32, num_hidden_layers=2, head_dim=8) | config
    hf_config = AutoConfig.for_model(
        "llama", **settings, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    return seeded(AutoModelForCausalLM.from_config, hf_config, seed=seed), tokenizer


def test_the_fingerprint_follows_weights_changed_after_wrapping():
    hf_model, tokenizer = _hf_llama()
    model = taskvec.load_model(hf_model, tokenizer)
    first = model.fingerprint
    taskvec.extract(model, PROMPTS, task="toy", spec="text-icl")  # running it changes nothing
    hf_model.to("cpu")  # nor does a move (the weights are the same)
    assert model.fingerprint == first
    with torch.no_grad():
        next(hf_model.parameters()).add_(0.1)  # an in-place edit, as a training step makes
    edited = model.fingerprint
    assert edited != first
    assert edited == taskvec.load_model(hf_model, tokenizer).fingerprint
    vector = taskvec.extract(model, PROMPTS, task="toy", spec="text-icl")
    assert vector.meta.model_fingerprint == edited
    optimizer = torch.optim.SGD(hf_model.parameters(), lr=0.1)
    hf_model(torch.tensor([[1, 2, 3]])).logits.sum().backward()
    optimizer.step()
    assert model.fingerprint not in (first, edited)


def test_results_do_not_depend_on_train_mode_and_the_model_keeps_its_own():
    hf_model, tokenizer = _hf_llama(attention_dropout=0.5)
    reference = taskvec.extract(taskvec.load_model(hf_model, tokenizer), PROMPTS, task="toy", spec="text-icl")
    hf_model.train()
    model = taskvec.load_model(hf_model, tokenizer)
    assert all(module.training for module in hf_model.modules())  # wrapping leaves its mode
    for _ in range(2):
        vector = taskvec.extract(model, PROMPTS, task="toy", spec="text-icl")
        assert torch.equal(vector.vectors, reference.vectors)
    patch = taskvec.Patch(1, reference.at(1))
    clean, patched = taskvec.generate_under_patches(model, PROMPTS, [None, patch], max_new_tokens=2)
    hf_model.eval()
    assert [clean, patched] == taskvec.generate_under_patches(model, PROMPTS, [None, patch], max_new_tokens=2)
    hf_model.train()
    taskvec.sweep(model, PROMPTS, torch.stack([reference.at(0), reference.at(1)]), [0, 1])
    assert all(module.training for module in hf_model.modules())  # and every call gives it back


def test_a_model_without_an_lm_head_is_refused_when_wrapped():
    hf_model, tokenizer = _hf_llama()
    with pytest.raises(ModelSpecError, match="LlamaModel has no LM head"):
        taskvec.load_model(hf_model.model, tokenizer)


def test_a_wrong_second_argument_gets_one_line():
    hf_model, tokenizer = _hf_llama()
    with pytest.raises(ModelSpecError, match="apply to loading by name"):
        taskvec.load_model(hf_model, LoadOptions(dtype="bfloat16"))
    with pytest.raises(ModelSpecError, match="apply to loading by name"):
        taskvec.load_model(hf_model, tokenizer, LoadOptions(dtype="bfloat16"))
    with pytest.raises(ModelSpecError, match="needs its tokenizer .* got a str"):
        taskvec.load_model(hf_model, "org/name")
    llava = build_llava()
    with pytest.raises(ModelSpecError, match="needs its processor .* got a "):
        taskvec.load_model(llava.model, llava.processor.tokenizer)


def test_a_tokenizer_that_appends_an_end_token_is_refused():
    hf_model, tokenizer = _hf_llama()
    appending = copy.deepcopy(tokenizer)
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    appending.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        special_tokens=[(bos, tokenizer.bos_token_id), (eos, tokenizer.eos_token_id)],
    )
    assert appending("A:")["input_ids"][-1] == tokenizer.eos_token_id
    with pytest.raises(ModelSpecError, match=f"appends '{eos}' after every text"):
        taskvec.load_model(hf_model, appending)
    taskvec.load_model(hf_model, tokenizer)  # one that only puts BOS before the text is fine


@pytest.mark.parametrize("call", ["generate", "generate_under_patches", "sweep", "evaluate"])
def test_every_public_call_refuses_a_bare_transformers_model(call):
    hf_model, _ = _hf_llama()
    calls = {
        "generate": lambda: taskvec.generate(hf_model, PROMPTS),
        "generate_under_patches": lambda: taskvec.generate_under_patches(hf_model, PROMPTS, [None]),
        "sweep": lambda: taskvec.sweep(hf_model, PROMPTS, torch.zeros(1, 32), [0]),
        "evaluate": lambda: taskvec.evaluate(
            taskvec.ExperimentConfig(tasks=["country_capital"]), adapter=hf_model
        ),
    }
    with pytest.raises(ModelSpecError, match=rf"{call} takes a taskvec model.*taskvec\.load_model"):
        calls[call]()


def test_numpy_integer_layers_are_layers_and_bools_are_not():
    hf_model, tokenizer = _hf_llama()
    model = taskvec.load_model(hf_model, tokenizer)
    vector = taskvec.extract(model, PROMPTS, task="toy", spec="text-icl")
    best = np.int64(1)  # what pandas' idxmax over a results frame gives
    as_numpy = taskvec.generate(model, PROMPTS, taskvec.Patch(best, vector.at(best)))
    assert as_numpy == taskvec.generate(model, PROMPTS, taskvec.Patch(1, vector.at(1)))
    swept = sweep(model, PROMPTS, torch.stack([vector.at(0), vector.at(1)]), list(np.arange(2)))
    assert torch.equal(
        swept.patched, sweep(model, PROMPTS, torch.stack([vector.at(0), vector.at(1)]), [0, 1]).patched
    )
    with pytest.raises(LayerError, match="is a bool"):
        taskvec.generate(model, PROMPTS, taskvec.Patch(True, vector.at(1)))
    with pytest.raises(LayerError, match="is a float"):
        taskvec.generate(model, PROMPTS, taskvec.Patch(1.0, vector.at(1)))


def test_a_scale_that_replace_would_ignore_is_refused():
    hf_model, tokenizer = _hf_llama()
    model = taskvec.load_model(hf_model, tokenizer)
    vector = taskvec.extract(model, PROMPTS, task="toy", spec="text-icl")
    with pytest.raises(ConfigError, match="scale 0.0 has no effect with mode 'replace'"):
        taskvec.generate(model, PROMPTS, taskvec.Patch(1, vector.at(1), "replace", 0.0))
    with pytest.raises(ConfigError, match="scale 2.0 has no effect with mode 'replace'"):
        sweep(model, PROMPTS, vector.vectors, [0, 1], scale=2.0)
    taskvec.generate(model, PROMPTS, taskvec.Patch(1, vector.at(1), "add", 0.0))  # add takes one


def test_one_folder_loaded_two_ways_says_why_its_fingerprints_differ(tmp_path):
    hf_model, tokenizer = _hf_llama()
    hf_model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    from_files = taskvec.load_model(str(tmp_path / "model"))
    vector = taskvec.extract(from_files, PROMPTS, task="toy", spec="text-icl")
    vector.save(tmp_path / "toy")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    from_memory = taskvec.load_model(reloaded, tokenizer, model_name=from_files.name)
    assert from_memory.fingerprint != from_files.fingerprint
    with pytest.raises(VectorMismatchError, match="fingerprinted by its files, one wrapped from memory"):
        taskvec.TaskVector.load(tmp_path / "toy", from_memory, same_model=True)


def test_a_vector_of_weights_changed_since_names_that_cause_first(tmp_path):
    """Both wrapped from memory, the weights changed by a step: the error named only the two
    ways of fingerprinting, which was not the cause."""
    hf_model, tokenizer = _hf_llama()
    model = taskvec.load_model(hf_model, tokenizer, model_name="toy")
    vector = taskvec.extract(model, PROMPTS, task="toy", spec="text-icl")
    vector.save(tmp_path / "toy")
    with torch.no_grad():
        next(hf_model.parameters()).mul_(1.5)  # a training step, as far as the weights can tell
    with pytest.raises(VectorMismatchError, match=r"other weights \(changed since the vector was extracted"):
        taskvec.TaskVector.load(tmp_path / "toy", model, same_model=True)


def test_a_budget_too_small_for_one_query_names_its_size_and_the_library_argument():
    from taskvec.errors import MemoryBudgetError
    from taskvec.models.batching import MemoryBudget

    hf_model, tokenizer = _hf_llama()
    model = taskvec.load_model(hf_model, tokenizer)
    vector = taskvec.extract(model, PROMPTS, task="toy", spec="text-icl")
    with pytest.raises(
        MemoryBudgetError, match=r"\(0\.00954 MB\); raise it \(--memory-budget-mb, or budget="
    ):
        sweep(model, PROMPTS, vector.vectors, [0, 1], budget=MemoryBudget(10_000))
