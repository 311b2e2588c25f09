"""A task vector is saved under the name it is given and never silently overwrites another; its
repr is one short line; extract records how its prompts were built."""

import pytest
import torch
from helpers.tinyllm import tiny_llm
from helpers.vectors import toy_vector

from taskvec.errors import VectorFileError
from taskvec.prompts.template import SPACED
from taskvec.vectors.extract import extract
from taskvec.vectors.task_vector import TaskVector


def _vector(task="capital", seed=1):
    values = torch.randn(3, 8, generator=torch.Generator().manual_seed(seed))
    return toy_vector(values=values, task=task, seed=seed)


def test_dotted_names_are_kept_as_given(tmp_path):
    one, two = _vector(seed=1), _vector(seed=2)
    first = one.save(tmp_path / "capital.v1")
    second = two.save(tmp_path / "capital.v2")
    assert (first.name, second.name) == ("capital.v1.safetensors", "capital.v2.safetensors")
    assert (tmp_path / "capital.v1.json").is_file() and (tmp_path / "capital.v2.json").is_file()
    assert not (tmp_path / "capital.safetensors").exists()
    assert torch.equal(TaskVector.load(tmp_path / "capital.v1").vectors, one.vectors)
    assert torch.equal(TaskVector.load(tmp_path / "capital.v2.safetensors").vectors, two.vectors)
    assert one.save(tmp_path / "x.safetensors").name == "x.safetensors"


def test_another_vector_is_not_silently_overwritten(tmp_path):
    _vector(seed=1).save(tmp_path / "capital")
    _vector(seed=1).save(tmp_path / "capital")  # the same vector again is fine
    with pytest.raises(VectorFileError, match="overwrite=True"):
        _vector(seed=2).save(tmp_path / "capital")
    replaced = _vector(seed=2)
    replaced.save(tmp_path / "capital", overwrite=True)
    assert torch.equal(TaskVector.load(tmp_path / "capital").vectors, replaced.vectors)


def test_repr_is_one_short_line():
    text = repr(_vector())
    assert text == "TaskVector(task='capital', spec='text-icl', model='m', 3 layers x 8, seed=1)"


def test_extract_records_examples_and_template():
    adapter = tiny_llm("llama")
    demos = [("a", "b"), ("c", "d")]
    prompts = [SPACED.icl(demos, q) for q in ("x", "y")]
    vector = extract(adapter, prompts, task="toy", spec="text-icl", n_examples=len(demos), template=SPACED)
    assert vector.meta.n_examples == 2
    assert vector.meta.template == "spaced"
    assert vector.meta.template_spec == SPACED.model_dump(mode="json")
