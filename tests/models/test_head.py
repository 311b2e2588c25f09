"""``greedy_head`` gives the float32 argmax of the unembedding, bit for bit, via a bfloat16 screen.

The cases that matter are the ones where bfloat16 alone would answer wrongly: near-ties closer
than bfloat16 can resolve, and rows with many near-tied tokens (the full-scan path)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from taskvec.models import head as head_module
from taskvec.models.head import greedy_head, unread_head, watching_head

torch.set_num_threads(1)


def linear_head(vocab: int = 3000, hidden: int = 64, bias: bool = False, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    head = nn.Linear(hidden, vocab, bias=bias)
    with torch.no_grad():
        head.weight.normal_()
    return head


def greedy(head: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    with greedy_head(head) as reader:
        placeholder = head(hidden)
    assert placeholder.shape == (*hidden.shape[:-1], 1)
    return reader.last()


def misordered_rows(head: nn.Linear, seed: int = 2) -> torch.Tensor:
    """Rows for which token 1 beats token 0 in float32 while bfloat16 strictly ranks token 0 first
    (the two are nearly the same vector, far above every other token)."""
    generator = torch.Generator().manual_seed(seed)
    hidden_size = head.in_features
    with torch.no_grad():
        direction = torch.randn(hidden_size, generator=generator)
        head.weight.mul_(0.3)
        head.weight[0] = 6 * direction / direction.norm()
        head.weight[1] = head.weight[0] + 0.01 * torch.randn(hidden_size, generator=generator)
        hidden = direction + torch.randn(20000, hidden_size, generator=generator)
        exact = F.linear(hidden, head.weight)
        rough = F.linear(hidden.bfloat16(), head.weight.bfloat16()).float()
    chosen = (exact.argmax(-1) == 1) & (rough[:, 0] > rough[:, 1])
    return hidden[chosen][:50]


def test_random_rows_give_the_float32_argmax():
    head = linear_head()
    hidden = 4 * torch.randn(300, 64)
    assert torch.equal(greedy(head, hidden), F.linear(hidden, head.weight).argmax(-1))


def test_near_ties_that_bfloat16_gets_wrong_are_resolved_in_float32():
    head = linear_head()
    hidden = misordered_rows(head)
    assert len(hidden) >= 10  # the control: bfloat16 alone would answer token 0 for all of them
    exact = F.linear(hidden, head.weight)
    assert (exact.argmax(-1) == 1).all()
    assert (greedy(head, hidden) == 1).all()


def test_rows_with_more_near_ties_than_the_top_k_take_the_full_scan(monkeypatch):
    monkeypatch.setattr(head_module, "TOP_K", 4)
    head = linear_head(vocab=500)
    direction = torch.randn(64)
    with torch.no_grad():  # 30 tokens within bfloat16 noise of one another, the last one best
        for token in range(30):
            head.weight[100 + token] = direction / direction.norm() * (3 + token * 1e-4)
    hidden = direction.expand(5, -1) * 2
    expected = F.linear(hidden, head.weight).argmax(-1)
    assert (expected == 129).all()
    assert torch.equal(greedy(head, hidden), expected)


def test_the_exact_pass_gathers_its_candidates_a_slice_at_a_time(monkeypatch):
    """A chunk's candidates can be most of the vocabulary; gathered at once, their float32 weight
    rows were a copy of the head no memory budget counts (16.5 MB in one SmolLM2 sweep under a
    16 MB budget). A slice at a time, the gather is bounded and the argmax the same."""
    monkeypatch.setattr(head_module, "TOP_K", 4)
    monkeypatch.setattr(head_module, "EXACT_SLICE", 7)
    head = linear_head(vocab=500, bias=True)
    direction = torch.randn(64)
    with torch.no_grad():  # 30 near-tied candidates: five slices of 7, the best in the last
        for token in range(30):
            head.weight[100 + token] = direction / direction.norm() * (3 + token * 1e-4)
    gathered = []
    real_linear = head_module.F.linear

    def linear(x, weight, bias=None):
        gathered.append(len(weight))
        return real_linear(x, weight, bias)

    monkeypatch.setattr(head_module.F, "linear", linear)
    hidden = direction.expand(5, -1) * 2
    tokens = greedy(head, hidden)
    monkeypatch.setattr(head_module.F, "linear", real_linear)
    assert torch.equal(tokens, F.linear(hidden, head.weight, head.bias).argmax(-1))
    exact = [n for n in gathered if n < 500]  # the bfloat16 scan is of the whole head
    assert exact and max(exact) <= 7 and sum(exact) >= 30


def test_a_bias_and_leading_dimensions_are_kept():
    head = linear_head(bias=True)
    with torch.no_grad():
        head.bias.normal_(std=5.0)
    hidden = torch.randn(3, 2, 64)
    assert torch.equal(greedy(head, hidden), F.linear(hidden, head.weight, head.bias).argmax(-1))


def test_an_edited_weight_is_screened_anew():
    head = linear_head()
    hidden = torch.randn(10, 64)
    greedy(head, hidden)
    with torch.no_grad():
        head.weight[7] = 100 * hidden.mean(0)  # token 7 now wins every row
    assert (greedy(head, hidden) == 7).all()


def test_heads_it_cannot_screen_give_the_plain_argmax():
    head = linear_head().to(torch.bfloat16)
    hidden = torch.randn(20, 64, dtype=torch.bfloat16)
    assert torch.equal(greedy(head, hidden), head(hidden).argmax(-1))


def test_the_head_is_restored_after_the_block_even_on_error():
    head = linear_head()
    hidden = torch.randn(4, 64)
    with pytest.raises(RuntimeError, match="boom"), greedy_head(head):
        raise RuntimeError("boom")
    assert "forward" not in vars(head)
    torch.testing.assert_close(head(hidden), F.linear(hidden, head.weight))
    with greedy_head(head) as reader, pytest.raises(RuntimeError, match="has not run"):
        reader.last()


def test_an_unread_head_computes_nothing_and_is_restored():
    head = linear_head()
    hidden = torch.randn(2, 5, 64)
    with unread_head(head):
        placeholder = head(hidden)
        assert placeholder.shape == (2, 5, 1) and not placeholder.any()
    assert torch.equal(head(hidden), F.linear(hidden, head.weight, head.bias))


def test_a_head_with_forward_hooks_computes_its_logits_for_them():
    """A researcher's hook on the head reads (or biases) its logits: under ``unread_head`` it was
    handed the placeholder, and under ``greedy_head`` its bias was skipped."""
    head = linear_head()
    seen = []

    def bias(_module, _args, logits: torch.Tensor) -> torch.Tensor:
        seen.append(logits.shape)
        return logits + 1e4 * (torch.arange(logits.shape[-1]) == 7)

    head.register_forward_hook(bias)
    hidden = torch.randn(2, 5, 64)
    with unread_head(head):
        head(hidden)
    with greedy_head(head) as reader:
        head(hidden)
    assert seen == [(2, 5, 3000)] * 2
    assert torch.equal(reader.last(), torch.full((2, 5), 7))
    assert "forward" not in vars(head) and len(head._forward_hooks) == 1  # ours removed, theirs kept


def test_a_watcher_sees_every_row_the_head_computes_logits_for_and_by_which_path():
    screened, plain = linear_head(), linear_head().to(torch.bfloat16)  # float32 is screened
    hidden = torch.randn(2, 3, 64)
    seen = []

    def watch(rows, path):
        seen.append((path, rows.clone()))

    with watching_head(screened, watch), watching_head(plain, watch):
        ids = greedy(screened, hidden)
        greedy(plain, hidden.bfloat16())
        logits = screened(hidden[0])
        with unread_head(screened):
            screened(hidden)
    assert [(path, tuple(rows.shape)) for path, rows in seen] == [
        ("screened", (6, 64)),
        ("plain", (6, 64)),
        ("logits", (3, 64)),
    ]  # nothing under unread_head
    assert torch.equal(seen[0][1], hidden.reshape(6, 64)) and torch.equal(seen[2][1], hidden[0])
    assert torch.equal(ids, F.linear(hidden, screened.weight).argmax(-1))  # watching changes nothing
    torch.testing.assert_close(logits, F.linear(hidden[0], screened.weight, screened.bias))


def test_a_watcher_stops_at_the_end_of_its_block_even_on_error():
    head = linear_head()
    seen = []
    with pytest.raises(RuntimeError, match="boom"), watching_head(head, lambda rows, path: seen.append(path)):
        head(torch.randn(1, 64))
        raise RuntimeError("boom")
    greedy(head, torch.randn(1, 64))
    head(torch.randn(1, 64))
    assert seen == ["logits"]
    assert not head._forward_pre_hooks and head not in head_module._WATCHERS
