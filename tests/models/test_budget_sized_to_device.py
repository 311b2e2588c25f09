"""The memory budget where none is given is sized to where the model's layers compute: 1 GiB on a
CPU (what every CPU run has used), on GPUs a share of their free memory, so a 7B model on a large
GPU batches many prompts. CI has no GPU: the GPU arithmetic is checked on devices named ``cuda``
with torch's memory queries replaced, and the pipelines' use of it with ``for_model`` replaced."""

from __future__ import annotations

import torch
from helpers.tinyllm import tiny_llm

import taskvec
from taskvec.models import batching
from taskvec.models.batching import GPU_SHARE, MemoryBudget, budget_of, gpu_free_bytes

GIB = 1 << 30


def test_a_model_on_the_cpu_keeps_the_budget_every_cpu_run_had():
    adapter = tiny_llm("llama", layers=3)
    assert MemoryBudget.for_model(adapter) == MemoryBudget() == MemoryBudget.from_mb(1024)
    assert budget_of(adapter, None) == MemoryBudget()
    assert budget_of(adapter, 8.0) == MemoryBudget.from_mb(8.0)  # a given budget wins


def test_one_gpu_gives_its_share_of_the_free_memory():
    gpu = torch.device("cuda:0")
    budget = MemoryBudget.sized_to_devices([gpu] * 32, free_bytes=lambda device: 40 * GIB)
    assert budget.bytes == int(GPU_SHARE * 40 * GIB)


def test_a_model_spread_over_gpus_is_bounded_by_the_tightest_share():
    first, second = torch.device("cuda:0"), torch.device("cuda:1")
    free = {first: 10 * GIB, second: 30 * GIB}
    layers = [first] * 16 + [second] * 16  # each GPU holds half the cache
    budget = MemoryBudget.sized_to_devices(layers, free_bytes=free.__getitem__)
    assert budget.bytes == int(GPU_SHARE * 20 * GIB)  # cuda:0's 10 GiB is half the working set
    # three quarters of the layers on the roomier GPU: it is the tighter one now
    layers = [first] * 8 + [second] * 24
    budget = MemoryBudget.sized_to_devices(layers, free_bytes=free.__getitem__)
    assert budget.bytes == int(GPU_SHARE * min(10 * 32 / 8, 30 * 32 / 24) * GIB)


def test_layers_offloaded_to_the_cpu_do_not_size_the_budget_by_their_ram():
    layers = [torch.device("cuda:0")] * 4 + [torch.device("cpu")] * 4
    budget = MemoryBudget.sized_to_devices(layers, free_bytes=lambda device: 2 * GIB)
    assert budget.bytes == int(GPU_SHARE * 2 * GIB * 8 / 4)


def test_free_memory_counts_what_torch_holds_unused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (5 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 3 * GIB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 1 * GIB)
    assert gpu_free_bytes(torch.device("cuda:0")) == 7 * GIB  # 5 free + (3 reserved - 1 in use)


def test_a_library_call_without_a_budget_sizes_one_to_the_model(monkeypatch):
    adapter = tiny_llm("llama", layers=3)
    queries = ["Q: apple\nA:", "Q: banana\nA:", "Q: cherry tree\nA:"]
    longest = max(adapter.token_count(q) for q in queries)
    two_queries = MemoryBudget(2 * MemoryBudget().sweep_query_bytes(adapter, longest, 1))
    asked = []

    def sized(model):
        asked.append(model)
        return two_queries

    vectors = torch.randn(1, adapter.hidden_size, generator=torch.Generator().manual_seed(0))
    whole = taskvec.sweep(adapter, queries, vectors, layers=[1])
    monkeypatch.setattr(batching.MemoryBudget, "for_model", staticmethod(sized))
    batched = taskvec.sweep(adapter, queries, vectors, layers=[1])
    assert asked == [adapter]  # sized once, to this model
    assert torch.equal(batched.patched, whole.patched) and torch.equal(batched.clean, whole.clean)
