"""Families are found, not registered: a module of the families package that declares
``MODEL_TYPES`` is loadable with no other edit, and one that declares none fails loudly."""

import sys
import textwrap

import pytest
from transformers import GPT2Config, GPT2LMHeadModel

import taskvec.models.registry as registry
from taskvec.errors import ModelSpecError
from taskvec.models.registry import discover_families, load_model

TOY_FAMILY = """
    from taskvec.models.families.causal_lm import CausalLMAdapter, text_family

    class ToyAdapter(CausalLMAdapter):
        \"\"\"A text model laid out otherwise: its own adapter, in its own file.\"\"\"

    MODEL_TYPES = {"gpt2": text_family(ToyAdapter)}
"""


def family_package(root, name: str, modules: dict[str, str]) -> str:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text('"""families for a test"""\n')
    for module, source in modules.items():
        (package / f"{module}.py").write_text(textwrap.dedent(source))
    return name


@pytest.fixture
def families_from(tmp_path, monkeypatch):
    """Point the registry at a package built in ``tmp_path``; the real families come back after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created = []

    def use(name: str, modules: dict[str, str]) -> str:
        created.append(family_package(tmp_path, name, modules))
        monkeypatch.setattr(registry, "FAMILY_PACKAGE", name)
        registry.families.cache_clear()
        return name

    yield use
    registry.families.cache_clear()
    for name in created:
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


def test_a_family_file_dropped_into_the_package_is_loadable(families_from, tmp_path):
    families_from("dropped_families", {"toy": TOY_FAMILY, "_helper": "NOT_A_FAMILY = True\n"})
    assert set(registry.FAMILIES) == {"gpt2"}  # helpers (``_name``) are not families
    # a model folder as users have them: config and weights (a folder without weights is refused)
    tiny = GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8)
    GPT2LMHeadModel(tiny).save_pretrained(tmp_path / "model")
    _tokenizer(tmp_path / "model")
    loaded = load_model(str(tmp_path / "model"))
    # by folder as in memory: the family's own adapter (the text loader built CausalLMAdapter)
    assert type(loaded).__name__ == "ToyAdapter" and loaded.model_id == str(tmp_path / "model")


def test_a_loader_that_gives_another_adapter_than_its_family_declares_is_refused(families_from, tmp_path):
    """A family whose loader built the base class loaded by folder as the wrong adapter, and its
    own overrides were silently skipped (an analysis then failed on the model's layout)."""
    wrong = (
        "from taskvec.models.families.causal_lm import CausalLMAdapter, text_family\n"
        "from taskvec.models.loading import Family\n"
        "class ToyAdapter(CausalLMAdapter): ...\n"
        "MODEL_TYPES = {'gpt2': Family(text_family().load, ToyAdapter)}\n"
    )
    families_from("wrong_families", {"toy": wrong})
    tiny = GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8)
    GPT2LMHeadModel(tiny).save_pretrained(tmp_path / "model")
    _tokenizer(tmp_path / "model")
    with pytest.raises(
        ModelSpecError, match="its family's loader gave a CausalLMAdapter, not the family's ToyAdapter"
    ):
        load_model(str(tmp_path / "model"))


def _tokenizer(folder) -> None:
    """A tokenizer beside the weights, as a model folder has one (the family's loader reads it)."""
    from helpers.tinyparts import make_tokenizer

    make_tokenizer([]).save_pretrained(folder)


def test_a_family_file_without_model_types_fails_loudly(families_from):
    families_from("silent_families", {"toy": TOY_FAMILY, "forgotten": "class ForgottenAdapter: ...\n"})
    with pytest.raises(ModelSpecError, match="silent_families.forgotten declares no model type"):
        registry.families()


def test_a_family_that_maps_a_model_type_to_a_bare_loader_fails_loudly(families_from):
    """A family says which adapter wraps its models in memory; a bare loader function does not."""
    bare = 'MODEL_TYPES = {"gpt2": lambda model_id, options: ("toy adapter", model_id)}\n'
    families_from("bare_families", {"toy": bare})
    with pytest.raises(ModelSpecError, match="bare_families.toy: MODEL_TYPES must map .* to a Family"):
        registry.families()


def test_a_family_that_cannot_be_imported_is_named(families_from):
    """A family importing a package this machine lacks stopped every model from loading with a
    bare ModuleNotFoundError that named no family."""
    needy = "import a_package_this_machine_lacks\n" + textwrap.dedent(TOY_FAMILY)
    families_from("needy_families", {"toy": needy})
    with pytest.raises(
        ModelSpecError, match=r"family module needy_families.toy cannot be imported \(No module"
    ):
        registry.families()


def test_two_families_claiming_one_model_type_fail_loudly(families_from):
    families_from("twin_families", {"first": TOY_FAMILY, "second": TOY_FAMILY})
    with pytest.raises(ModelSpecError, match="claimed by twin_families.first and twin_families.second"):
        registry.families()


def test_importing_the_registry_imports_no_vision_family():
    """Discovery is lazy: a fresh interpreter that imports the registry has loaded no VLM family."""
    import subprocess

    code = (
        "import sys, taskvec.models.registry; "
        "print(sorted(m for m in sys.modules if m.startswith('taskvec.models.families.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['taskvec.models.families.causal_lm']"


def test_the_shipped_families_all_declare_their_types():
    found = discover_families(registry.FAMILY_PACKAGE)
    assert {"llama", "llava", "idefics3", "smolvlm", "qwen2_vl", "mllama"} <= set(found)


def test_a_family_of_another_installed_package_is_found_through_its_entry_point(tmp_path, monkeypatch):
    """A family installed from PyPI could only be added by editing taskvec inside site-packages;
    a package of one's own declares it under the ``taskvec.families`` entry points instead."""
    import importlib.metadata

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "my_gpt2_family.py").write_text(textwrap.dedent(TOY_FAMILY))
    declared = [importlib.metadata.EntryPoint("toy", "my_gpt2_family", registry.FAMILY_ENTRY_POINTS)]
    real = importlib.metadata.entry_points
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group=None, **kw: (
            declared if group == registry.FAMILY_ENTRY_POINTS else real(group=group, **kw)
        ),
    )
    registry.families.cache_clear()
    try:
        assert registry.plugin_modules() == ["my_gpt2_family"]
        assert registry.families()["gpt2"].adapter_class.__name__ == "ToyAdapter"
        assert "llama" in registry.families()  # beside taskvec's own
    finally:
        monkeypatch.undo()
        registry.families.cache_clear()
        sys.modules.pop("my_gpt2_family", None)
