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


def test_a_delimiter_ending_in_white_space_is_refused_with_where_the_space_goes():
    """``"delimiter": " "`` read and patched the vector at a bare space no demonstration shows
    before its answer: every method scored 0 without a word."""
    with pytest.raises(TemplateError, match="ends in white space.*answer_prefix"):
        PromptTemplate(name="sp", input_prefix="Q: ", output_prefix="A: ", delimiter=" ")
    with pytest.raises(TemplateError, match="ends in white space"):
        PromptTemplate(name="sp", output_prefix="A: ", delimiter=": ")
    with pytest.raises(TemplateError, match="put a space after it in answer_prefix"):
        PromptTemplate(name="sp", output_prefix="A: ")
    assert PromptTemplate(name="sp", output_prefix="A:", answer_prefix=" ").query("x") == ("Q:x\nA:",)


@pytest.mark.parametrize(
    "fields",
    [{"input_prefix": "Q: {x}"}, {"output_prefix": "A: {y}", "delimiter": "}"}, {"separator": "{input}\n"}],
)
def test_a_format_placeholder_in_a_field_is_refused(fields):
    """``Q: {x}`` was kept as literal text in every prompt (``Q: {x}France``)."""
    with pytest.raises(TemplateError, match="literal text.*leave the placeholder out"):
        PromptTemplate(name="braces", **fields)


@pytest.mark.parametrize("name", ["", "x\ny", "my template (v2)*?", "Q:{x} A:{y}", "../up"])
def test_a_template_name_that_cannot_name_a_folder_is_refused(name):
    with pytest.raises(TemplateError, match="template name"):
        PromptTemplate(name=name)


def test_a_template_may_not_take_a_built_in_name_with_other_fields():
    """A file named ``paper`` with other prefixes ran, and its report said template ``paper``."""
    with pytest.raises(TemplateError, match="'paper' is built in"):
        get_template({"name": "paper", "input_prefix": "Input: "})
    assert get_template({"name": "paper"}) == PAPER
    assert get_template({"name": "spaced", "input_prefix": "Q: ", "answer_prefix": " "}) == SPACED
