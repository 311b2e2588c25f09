import pytest
import torch
from helpers.vectors import toy_vector

from taskvec.errors import VectorMismatchError
from taskvec.vectors.task_vector import TaskVector


def _vector(width=8, layers=3, model="m", fingerprint="abc", task="t", seed=1, examples=5):
    fields = dict(model=model, model_fingerprint=fingerprint, task=task, seed=seed, n_examples=examples)
    return toy_vector(layers, width, **fields)


class _Model:
    name, hidden_size, fingerprint = "other", 16, "zzz"


def test_round_trip_keeps_values_and_provenance(tmp_path):
    vector = _vector()
    path = vector.save(tmp_path / "v")
    loaded = TaskVector.load(path)
    assert torch.equal(loaded.vectors, vector.vectors)
    assert loaded.meta == vector.meta
    assert (tmp_path / "v.json").is_file()


def test_vectors_compare_by_value_and_move_with_their_provenance(tmp_path):
    """``a == b`` raised (the dataclass compared tensors elementwise), and a dtype change meant
    building a new TaskVector by hand."""
    vector = _vector()
    assert vector == TaskVector(vector.vectors.clone(), vector.meta)
    assert vector != TaskVector(vector.vectors + 1, vector.meta) and vector != _vector(seed=2)
    half = vector.to(torch.bfloat16)
    assert half.meta == vector.meta and half.vectors.dtype == torch.bfloat16 and half != vector
    assert TaskVector.load(half.save(tmp_path / "half")) == half


def test_corrupted_file_is_detected(tmp_path):
    path = _vector().save(tmp_path / "v")
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    tensors["vectors"][0, 0] += 1
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(VectorMismatchError, match="checksum"):
        TaskVector.load(path)


def test_vector_of_another_width_is_refused():
    with pytest.raises(VectorMismatchError, match="8 wide"):
        _vector().check_fits(_Model())


def test_missing_layer_and_mixed_means_are_refused():
    with pytest.raises(VectorMismatchError, match="no layer 7"):
        _vector().at(7)
    with pytest.raises(VectorMismatchError):
        TaskVector.mean([_vector(layers=3), _vector(layers=4)], spec="ensemble")
    mean = TaskVector.mean([_vector(), _vector()], spec="ensemble")
    assert mean.meta.spec == "ensemble" and mean.meta.n_prompts == 4


def test_a_mean_records_what_it_is_made_of_and_refuses_two_models():
    """The mean was recorded as its first vector's task, seed and examples: two tasks averaged read
    as the first task, and an ensemble (the instruction, then 5-shot exemplars) as 0 examples."""
    ensemble = TaskVector.mean([_vector(examples=0), _vector(examples=5)], spec="ensemble")
    assert (ensemble.meta.task, ensemble.meta.seed, ensemble.meta.n_examples) == ("t", 1, 5)
    mixed = TaskVector.mean(
        [_vector(task="a", seed=1), _vector(task="b", seed=2), _vector(task="a")], "text-icl"
    )
    assert (mixed.meta.task, mixed.meta.seed) == ("a+b", None)
    with pytest.raises(
        VectorMismatchError, match="only average task vectors of one model: m \\(abc\\) and m \\(xyz\\)"
    ):
        TaskVector.mean([_vector(), _vector(fingerprint="xyz")], spec="text-icl")


def test_a_folder_that_cannot_be_made_is_a_storage_error_and_leaves_nothing(tmp_path, monkeypatch):
    """A read-only place: taskvec's one-line StorageError, not a raw OSError from making the folder."""
    import errno
    from pathlib import Path

    from taskvec.errors import StorageError

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(StorageError, match="read-only"):
        _vector().save(tmp_path / "vectors" / "v")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_a_save_stopped_in_its_sidecar_leaves_no_temporary_file_and_names_the_sidecar(
    stop, tmp_path, monkeypatch
):
    """SIGTERM (read as Ctrl-C) inside the write left a hidden ``.<name>.<pid>.tmp`` that no
    resume ever removed; a full disk there was blamed on the vector file, written whole."""
    from pathlib import Path

    from taskvec.errors import StorageError

    real = Path.write_text

    def stopped(self, *args, **kwargs):
        if self.name.endswith(".tmp"):
            real(self, "{")  # cut short
            raise stop
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", stopped)
    expected = StorageError if isinstance(stop, OSError) else stop
    with pytest.raises(expected) as raised:
        _vector().save(tmp_path / "v")
    assert not [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")]
    if expected is StorageError:
        assert str(raised.value).startswith(f"{tmp_path / 'v.json'}: ")
