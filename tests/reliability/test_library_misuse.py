"""Library calls given impossible arguments fail with taskvec's own errors, naming the problem,
before any forward pass: a caller can catch ``TaskvecError`` for every bad input, as the command
line does, and (for compatibility) ``ValueError`` still catches them."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers.tinyllm import tiny_llm

from taskvec.errors import ConfigError, TaskvecError, VectorMismatchError
from taskvec.models.batching import ContextLengthWarning
from taskvec.patching.patch import Patch, generate_ids
from taskvec.patching.sweep import sweep
from taskvec.prompts.template import SPACED, instruction_prompt
from taskvec.vectors.extract import extract
from taskvec.vectors.task_vector import TaskVector


@pytest.fixture(scope="module")
def llm():
    return tiny_llm("llama")


def _forbid_forward(monkeypatch, adapter) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("a forward pass ran before the arguments were checked")

    monkeypatch.setattr(adapter, "forward", refuse)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda m: extract(m, [], task="t", spec="text-icl"), ConfigError, "at least one prompt"),
        (
            lambda m: extract(m, [["Q:a\nA:"]], task="t", spec="text-icl", sources=[]),
            ConfigError,
            "0 sources for 1 prompts",
        ),
        (
            lambda m: generate_ids(m, [["Q:a\nA:"]], Patch(0, torch.zeros(m.hidden_size), mode="multiply")),
            ConfigError,
            "unknown patch mode 'multiply'",
        ),
        (
            lambda m: sweep(m, [["Q:a\nA:"]], torch.zeros(1, m.hidden_size), [0, 1]),
            VectorMismatchError,
            "one vector per layer",
        ),
        (lambda m: TaskVector.mean([], "text-icl"), VectorMismatchError, "no task vectors to average"),
        (
            lambda m: extract(
                m, [(SPACED.icl([("a", "b")], "c")[0] + " ",)], task="t", spec="text-icl", template=SPACED
            ),
            ConfigError,
            "prompt 0 ends with .*A: ', not the template's delimiter ':'",
        ),
        (
            lambda m: extract(
                m,
                [instruction_prompt("Give the color of the food")],
                task="t",
                spec="instruction",
                template=SPACED,
            ),
            ConfigError,
            "ends with ' of the food', not the template's delimiter ':'.*end the instruction with it",
        ),
        (
            lambda m: generate_ids(m, [["Q:a\nA:"]], max_new_tokens=0),
            ConfigError,
            "max_new_tokens must be at least 1",
        ),
        # one prompt where a list goes was read as one prompt per character, silently
        (lambda m: extract(m, "Q:a\nA:", task="t", spec="text-icl"), ConfigError, "not one string"),
        (
            lambda m: generate_ids(m, "Q:a\nA:"),
            ConfigError,
            r"not one string \('Q:a\\nA:'\); give \[prompt\]",
        ),
        (lambda m: sweep(m, "Q:a\nA:", torch.zeros(1, m.hidden_size), [0]), ConfigError, "not one string"),
        # with a template the delimiter check read the string's last letter first ("ends with 'Q'")
        (
            lambda m: extract(m, "Q:a\nA:", task="t", spec="text-icl", template=SPACED),
            ConfigError,
            "not one string",
        ),
        # metadata a vector would have carried unchecked
        (lambda m: extract(m, ["Q:a\nA:"], task="t", spec="x", modality="audio"), ConfigError, "modality"),
        (
            lambda m: extract(m, ["Q:a\nA:"], task="t", spec="x", n_examples=-3),
            ConfigError,
            "n_examples >= 0",
        ),
    ],
    ids=[
        "no prompts",
        "sources miscounted",
        "patch mode",
        "sweep vectors",
        "mean of none",
        "past the delimiter",
        "instruction before the delimiter",
        "no token",
        "one string to extract",
        "one string to generate",
        "one string to sweep",
        "one string with a template",
        "unknown modality",
        "negative examples",
    ],
)
def test_an_impossible_argument_is_taskvecs_own_error_before_any_forward_pass(
    llm, monkeypatch, call, error, words
):
    _forbid_forward(monkeypatch, llm)
    with pytest.raises(error, match=words) as caught:
        call(llm)
    assert isinstance(caught.value, TaskvecError) and isinstance(caught.value, ValueError)


def test_a_whole_task_vector_where_one_layers_tensor_belongs_says_how_to_take_it(llm, monkeypatch):
    """``Patch(11, vector)`` and ``sweep(..., vector, layers)`` with a ``TaskVector`` failed with
    AttributeError: 'TaskVector' object has no attribute 'ndim'."""
    vector = extract(llm, [("Q:a\nA:",)], task="t", spec="text-icl")
    _forbid_forward(monkeypatch, llm)
    with pytest.raises(
        VectorMismatchError, match=r"not a TaskVector; for a task vector, give vector.at\(1\)"
    ):
        generate_ids(llm, [["Q:a\nA:"]], Patch(1, vector))
    with pytest.raises(VectorMismatchError, match=r"not a TaskVector; for a task vector: torch.stack"):
        sweep(llm, [["Q:a\nA:"]], vector, [0, 1])


def test_one_prompt_with_a_picture_where_a_list_goes_is_refused_in_one_line(monkeypatch):
    """Read as one prompt per segment, it ended in a TypeError ('WebPImageFile' object is not
    iterable) from inside the adapter."""
    from helpers.families.llava import build_llava
    from PIL import Image

    vlm = build_llava()
    refused = r"not one prompt \(its segments: text, image, text\); give \[prompt\]"
    alone = ("Q:", Image.new("RGB", (8, 8)), "\nA:")
    _forbid_forward(monkeypatch, vlm)
    for call in (
        lambda: generate_ids(vlm, alone),
        lambda: extract(vlm, alone, task="t", spec="image-icl"),
        lambda: sweep(vlm, alone, torch.zeros(1, vlm.hidden_size), [0]),
    ):
        with pytest.raises(ConfigError, match=refused):
            call()


def test_prompts_past_the_models_trained_context_are_warned_of_once(llm, monkeypatch):
    """A 64-position model was given 600-token prompts by extract, generate and evaluate, without a
    word: past its trained context a model's answers mean little."""
    monkeypatch.setattr(llm.text_config, "max_position_embeddings", 8)
    long_prompt = "Q:" + "a b " * 8 + "\nA:"
    with pytest.warns(ContextLengthWarning, match="longer than the 8 positions the model was trained on"):
        generate_ids(llm, [long_prompt, "Q:a\nA:"], max_new_tokens=1)
    monkeypatch.setattr(llm.text_config, "max_position_embeddings", 2048)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContextLengthWarning)
        generate_ids(llm, [long_prompt], max_new_tokens=1)


def test_the_context_warning_is_said_once_however_many_steps_count_tokens(llm, monkeypatch):
    """A run counts tokens in several steps (extraction, sweep, answers): the warning came out 4
    times, once per calling place, where one was meant."""
    from taskvec.models.batching import token_counts

    monkeypatch.setattr(llm.text_config, "max_position_embeddings", 8)
    long_prompt = "Q:" + "a b " * 8 + "\nA:"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        token_counts(llm, [long_prompt])
        token_counts(llm, [long_prompt, "Q:a\nA:"])  # another calling place
        generate_ids(llm, [long_prompt], max_new_tokens=1)
    assert [w.category for w in caught] == [ContextLengthWarning]
