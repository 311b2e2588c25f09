"""Loading through the registry, offline: base LLMs (the VLMs' text halves) from a local folder,
the loading options (dtype, accelerate device map, 4-bit), and the error for an unknown type."""

import importlib.util

import pytest
import torch
from helpers.families import CASES
from helpers.tinyllm import tiny_llm
from helpers.tinyparts import text_icl
from transformers import BertConfig

from taskvec.errors import ModelSpecError
from taskvec.models.families.causal_lm import CausalLMAdapter
from taskvec.models.registry import FAMILIES, LoadOptions, load_model

torch.set_num_threads(1)


def saved_llm(model_type: str, folder) -> CausalLMAdapter:
    llm = tiny_llm(model_type)
    llm.model.save_pretrained(folder)
    llm.tokenizer.save_pretrained(folder)
    return llm


#: every text model_type a family serves: ``causal_lm``'s list, and any family file's of its own
TEXT_TYPES = sorted(t for t, family in FAMILIES.items() if not family.adapter_class.supports_images)


def test_every_base_llm_of_a_vision_family_is_loadable():
    assert {case.base_llm for case in CASES} <= set(TEXT_TYPES)


@pytest.mark.parametrize("model_type", TEXT_TYPES)
def test_a_base_llm_loads_from_a_local_folder(model_type, tmp_path):
    original = saved_llm(model_type, tmp_path)
    loaded = load_model(str(tmp_path), LoadOptions(cache_dir=tmp_path / "cache"))
    assert isinstance(loaded, CausalLMAdapter)
    assert (loaded.num_layers, loaded.hidden_size) == (2, 32)
    prompts = [text_icl(0), text_icl(1)]
    assert torch.equal(loaded.encode(prompts).input_ids, original.encode(prompts).input_ids)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.forward(loaded.encode(prompts)).logits, original.forward(original.encode(prompts)).logits
        )


def test_dtype_and_device_map_reach_transformers(tmp_path):
    """``device_map="auto"`` is planned by accelerate (here: everything fits on the CPU)."""
    original = saved_llm("llama", tmp_path)
    options = LoadOptions(dtype="bfloat16", device_map="auto", cache_dir=tmp_path / "cache")
    assert options.hf_kwargs() == {"dtype": torch.bfloat16, "device_map": "auto"}
    loaded = load_model(str(tmp_path), options)
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    assert {p.device.type for p in loaded.model.parameters()} == {"cpu"}
    prompts = [text_icl(0)]
    with torch.no_grad():
        ours = loaded.forward(loaded.encode(prompts)).logits
        reference = original.forward(original.encode(prompts)).logits
    assert ours.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), reference, atol=0.05, rtol=0.05)
    # other numerics, other identity: results and vectors of the two never mix
    default = load_model(str(tmp_path), LoadOptions(cache_dir=tmp_path / "cache"))
    assert loaded.fingerprint == f"{default.fingerprint}@bfloat16+device_map=auto"
    assert (loaded.describe()["numerics"], default.describe()["numerics"]) == (
        "bfloat16+device_map=auto",
        "float32",
    )


def test_an_unknown_dtype_is_refused_before_loading(tmp_path):
    with pytest.raises(ModelSpecError, match="unknown dtype 'float8'"):
        load_model(str(tmp_path / "no-such-model"), LoadOptions(dtype="float8"))


def test_an_unknown_dtype_is_refused():
    with pytest.raises(ModelSpecError, match="unknown dtype 'float99'"):
        LoadOptions(dtype="float99").hf_kwargs()


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_4bit_without_bitsandbytes_says_what_to_install():
    with pytest.raises(ModelSpecError, match="pip install bitsandbytes"):
        LoadOptions(load_in_4bit=True).hf_kwargs()


def test_4bit_asks_transformers_for_a_bitsandbytes_config(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "bitsandbytes" else real_find_spec(name, *a),
    )
    kwargs = LoadOptions(load_in_4bit=True, dtype="bfloat16").hf_kwargs()
    quantization = kwargs["quantization_config"]
    assert quantization.load_in_4bit
    assert quantization.bnb_4bit_compute_dtype == torch.bfloat16


def test_an_unknown_model_type_lists_the_supported_ones(tmp_path):
    BertConfig().save_pretrained(tmp_path)
    with pytest.raises(ModelSpecError, match="no adapter for model_type 'bert'") as error:
        load_model(str(tmp_path))
    for model_type in FAMILIES:
        assert repr(model_type) in str(error.value)
    text, vision = str(error.value).split("vision-language")  # each listed on its side
    assert all(repr(t) in text for t in TEXT_TYPES) and "'llava'" in vision and "'llava'" not in text


def test_a_model_type_transformers_does_not_know_is_refused_by_ours(tmp_path):
    """A folder of a newer architecture got transformers' page-long "does not recognize this
    architecture" message instead of the supported types."""
    (tmp_path / "config.json").write_text('{"model_type": "foo_vl"}')
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelSpecError, match=r"no adapter for model_type 'foo_vl'.*supported model types"):
        load_model(str(tmp_path))


def test_local_weights_are_fingerprinted_by_content(tmp_path):
    """A local folder has no hub commit: its fingerprint (run identity, vector metadata) is a hash
    of its weight files, equal for equal weights anywhere, different after the weights change."""
    options = LoadOptions(cache_dir=tmp_path / "cache")
    saved_llm("llama", tmp_path / "a")
    saved_llm("llama", tmp_path / "b")
    first = load_model(str(tmp_path / "a"), options).fingerprint
    assert len(first) == 16
    assert load_model(str(tmp_path / "b"), options).fingerprint == first
    assert load_model(str(tmp_path / "a"), options).fingerprint == first  # from the cache now
    tiny_llm("llama", seed=4).model.save_pretrained(tmp_path / "a")
    assert load_model(str(tmp_path / "a"), options).fingerprint != first


def test_an_adapter_shows_its_name_and_shape():
    """What a notebook prints for a loaded model: its name and shape, not an object address."""
    adapter = tiny_llm("llama", seed=4)
    assert repr(adapter) == "CausalLMAdapter('tiny-llama-32', 2 layers x 32)"
    adapter.mark_numerics("bfloat16")
    assert repr(adapter).endswith("2 layers x 32, bfloat16)")


class _RunsCode:
    """What a hostile pickle holds: unpickling it would call ``touch`` on the planted path."""

    def __init__(self, planted):
        self.planted = str(planted)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.planted}",))


def _saved_with_a_bin_only(folder):
    """A tiny model's folder whose weights are to be a ``pytorch_model.bin`` the test writes."""
    llm = tiny_llm("llama")
    llm.model.save_pretrained(folder)
    llm.tokenizer.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    return folder


def test_a_weight_file_whose_pickle_would_run_code_is_one_line_and_runs_nothing(tmp_path):
    """torch's weights-only loader refused it, as a traceback box of 40 lines."""
    folder = _saved_with_a_bin_only(tmp_path / "hostile")
    planted = tmp_path / "ran"
    torch.save({"model.embed_tokens.weight": _RunsCode(planted)}, folder / "pytorch_model.bin")
    with pytest.raises(ModelSpecError, match="hostile: a weight file holds more than weights.*posix.system"):
        load_model(str(folder))
    assert not planted.exists()


def test_a_weight_file_that_is_a_git_lfs_pointer_is_not_called_hostile(tmp_path):
    folder = _saved_with_a_bin_only(tmp_path / "pointer")
    (folder / "pytorch_model.bin").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 1234\n"
    )
    said = "pointer: a weight file does not read as weights .*git lfs pull"
    with pytest.raises(ModelSpecError, match=said):
        load_model(str(folder))
