"""The dequantized GGUF cache: the first (dequantizing) load and every later (cached) load give
the same weights and leave torch's global random state in the same place, so a seeded run that
builds modules after loading a backbone (``taskvec align``) does not depend on the cache."""

import pytest
import torch

from taskvec.models.registry import LoadOptions, load_model

pytestmark = pytest.mark.slow


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
