import pytest

from taskvec.errors import TemplateError
from taskvec.prompts.template import PAPER, SPACED, PromptTemplate, get_template, majority_label


def test_paper_template_matches_the_paper_format():
    prompt = PAPER.icl([("France", "Paris"), ("Japan", "Tokyo")], "Italy")
    assert prompt == ("Q:France\nA:Paris\n\nQ:Japan\nA:Tokyo\n\nQ:Italy\nA:",)


def test_spaced_template_puts_the_space_before_the_answer_not_after_the_delimiter():
    prompt = SPACED.icl([("France", "Paris")], "Italy")
    assert prompt == ("Q: France\nA: Paris\n\nQ: Italy\nA:",)
    assert "".join(SPACED.query("Italy")).endswith(":")


def test_image_inputs_stay_separate_segments():
    from PIL import Image

    image = Image.new("RGB", (4, 4))
    prompt = PAPER.icl([(image, "Paris")], "Italy")
    assert prompt[0] == "Q:" and prompt[1] is image and prompt[2] == "\nA:Paris\n\nQ:Italy\nA:"


def test_template_without_the_delimiter_at_the_end_is_refused():
    with pytest.raises(TemplateError, match="must end with the delimiter"):
        PromptTemplate(name="broken", output_prefix="A: ")
    with pytest.raises(TemplateError, match="unknown template"):
        get_template("nope")


def test_majority_counts_and_breaks_ties_by_first_occurrence():
    assert majority_label(["euro", "dollar", "euro"]) == "euro"
    assert majority_label(["yen", "won", "won", "yen"]) == "yen"
    assert majority_label(["a", "b", "c"]) == "a"
