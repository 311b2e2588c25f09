from taskvec.evaluation.metrics import exact_match, first_token_scores, paper_match, strict_match


def test_paper_rule_is_a_prefix_match_either_way():
    assert paper_match(" Par", ["Paris"])
    assert paper_match("Paris,", ["Paris"])
    assert not paper_match(" par", ["Paris"])
    assert paper_match(" par", ["Paris"], case_sensitive=False)


def test_paper_rule_refuses_empty_strings():
    assert not paper_match("", ["Paris"])
    assert not paper_match("  \n", ["Paris"])
    assert not paper_match("Paris", [""])


def test_paper_rule_is_fooled_by_one_letter_but_strict_is_not():
    berlin_tokens = [" Berlin", "Ber"]
    assert paper_match(" B", ["Berlin"])
    assert not strict_match(" B", berlin_tokens)
    assert strict_match(" Berlin", berlin_tokens)
    assert strict_match("berlin", berlin_tokens)


def test_multi_token_labels_score_on_their_first_token():
    tokens = [" Buenos", "Bu"]
    scores = first_token_scores(" Buenos", ["Buenos Aires"], lambda _t: tokens)
    assert scores == {"paper": True, "paper_ci": True, "strict": True}
    assert exact_match(" Buenos Aires\n\nQ:", ["Buenos Aires"])
    assert not exact_match(" Buenos", ["Buenos Aires"])


def test_aliases_count_for_strict_and_exact_but_not_for_the_paper_rule():
    scores = first_token_scores(" Kiev", ["Kyiv", "Kiev"], lambda t: [" " + t])
    assert scores["strict"] and not scores["paper"]
    assert exact_match("Kiev.", ["Kyiv", "Kiev"])


def test_exact_is_case_insensitive_and_ignores_punctuation_but_not_echoes():
    assert exact_match(" euro.", ["euro"])
    assert not exact_match(" Guatemala", ["Guatemala City"])
    assert not exact_match("", ["x"])
