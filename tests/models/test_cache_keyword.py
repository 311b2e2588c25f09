"""The KV cache goes in and comes out under the name of the transformers taskvec runs on (5.24
renamed ``past_key_values`` to ``cache``; the old name warns, and from 5.40 is dropped)."""

import inspect
import warnings

import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.cache_utils import Cache

from taskvec.models.cache_keyword import CACHE_KEYWORD, cache_argument, cache_of


def _tiny_llama() -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2,
    )  # fmt: skip
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def test_the_keyword_is_the_one_this_transformers_forward_takes():
    assert CACHE_KEYWORD in inspect.signature(LlamaForCausalLM.forward).parameters


def test_a_cached_step_under_that_keyword_equals_the_full_forward_without_a_warning():
    model = _tiny_llama()
    ids = torch.tensor([[3, 5, 7, 9]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecated name warns (FutureWarning)
        prefix = model(input_ids=ids[:, :3], use_cache=True)
        cache = cache_of(prefix)
        assert isinstance(cache, Cache) and cache.get_seq_length() == 3
        step = model(input_ids=ids[:, 3:], **cache_argument(cache), use_cache=True).logits[:, -1]
        full = model(input_ids=ids).logits[:, -1]
    torch.testing.assert_close(step, full, atol=1e-5, rtol=1e-5)
