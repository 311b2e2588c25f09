"""A model loaded by hub id is fingerprinted by the commit its files come from: transformers 5
no longer records it on the config, where taskvec read it, so every hub model had the empty
fingerprint and a run folder could not tell one model's weights from another's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.tinyllm import tiny_llm

FIRST, SECOND = "0123456789abcdef0123456789abcdef01234567", "fedcba9876543210fedcba9876543210fedcba98"

#: what the subprocess prints: the fingerprint of a hub id known before loading (a finished run
#: is read back with it) and once loaded, from the offline cache
CODE = """
from taskvec.models.registry import fingerprint_before_loading, load_model
print(fingerprint_before_loading("someone/tiny"), load_model("someone/tiny").fingerprint)
"""


def cached_hub_model(cache: Path, commit: str, seed: int = 3) -> None:
    """A tiny model as the Hugging Face cache holds a downloaded one: its files in
    ``snapshots/<commit>``, ``refs/main`` naming that commit."""
    repository = cache / "models--someone--tiny"
    llm = tiny_llm("llama", layers=3, seed=seed)
    llm.model.save_pretrained(repository / "snapshots" / commit)
    llm.tokenizer.save_pretrained(repository / "snapshots" / commit)
    (repository / "refs").mkdir(exist_ok=True)
    (repository / "refs" / "main").write_text(commit)


def offline(cache: Path, code: str) -> list[str]:
    environment = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_hub_model_is_fingerprinted_by_its_commit(tmp_path):
    cached_hub_model(tmp_path, FIRST)
    assert offline(tmp_path, CODE) == [FIRST, FIRST]
    cached_hub_model(tmp_path, SECOND, seed=4)  # the repository updated: other weights
    assert offline(tmp_path, CODE) == [SECOND, SECOND]
