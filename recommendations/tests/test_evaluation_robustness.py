"""The robustness figures of the offline evaluation: per-case gains, bootstrap resamples, the time split."""

from pathlib import Path

import pytest

from recommendations.evaluation import (
    EvalCase,
    Interaction,
    evaluate_rankings,
    first_seen,
    robustness_check,
    run_evaluation,
)

TINY = Path(__file__).parent / "data" / "tiny_interactions.json"


def _cases(n: int) -> list[EvalCase]:
    return [EvalCase(user_id=f"u{i}", history=("a",), target="b") for i in range(n)]


def test_evaluate_rankings_keeps_each_cases_gain_in_case_order():
    cases = [
        EvalCase(user_id="u1", history=("a",), target="b"),
        EvalCase(user_id="u2", history=("b",), target="c"),
        EvalCase(user_id="u3", history=("c",), target="d"),
    ]

    result = evaluate_rankings(cases, [["b", "x"], ["x", "y", "c"], ["x", "y"]], catalog_size=10, k=3)

    assert result.gains == (1.0, 0.5, 0.0)
    assert "robustness" not in result.as_dict()


def test_first_seen_is_each_users_earliest_time_then_file_position():
    rows = [
        Interaction(user_id="u1", item_id="a", timestamp=5.0, position=0),
        Interaction(user_id="u1", item_id="b", timestamp=3.0, position=1),
        Interaction(user_id="u2", item_id="a", timestamp=3.0, position=2),
        Interaction(user_id="u2", item_id="c", timestamp=3.0, position=3),
    ]

    assert first_seen(rows) == {"u1": (3.0, 1), "u2": (3.0, 2)}


def test_time_split_takes_the_first_seventy_percent_of_users_by_first_interaction():
    cases = _cases(10)
    # Users first seen in reverse case order: u9 earliest. The seven earliest are u9..u3, with gains 9..3 / 10.
    first = {f"u{i}": (float(100 - i), i) for i in range(10)}
    gains = [i / 10 for i in range(10)]

    result = robustness_check(cases, gains, first)

    assert result.early_users == 7
    assert result.late_users == 3
    assert result.early == pytest.approx(sum(range(3, 10)) / 70)
    assert result.late == pytest.approx(sum(range(3)) / 30)


def test_bootstrap_resamples_are_fixed_and_paired_between_two_models():
    cases = _cases(50)
    first = {c.user_id: (0.0, i) for i, c in enumerate(cases)}
    a = [float(i % 3 == 0) for i in range(50)]
    b = [x + 0.25 for x in a]

    one = robustness_check(cases, a, first)
    again = robustness_check(cases, a, first)
    other = robustness_check(cases, b, first)

    assert len(one.bootstrap) == 2
    assert one.bootstrap == again.bootstrap
    # The same users are drawn for both models, so a uniform gain of 0.25 shows exactly in every resample.
    assert [y - x for x, y in zip(one.bootstrap, other.bootstrap, strict=True)] == pytest.approx([0.25, 0.25])
    # A resample is not the full sample (with 50 users the chance of drawing each once is negligible).
    assert one.bootstrap[0] != pytest.approx(sum(a) / 50) or one.bootstrap[1] != pytest.approx(sum(a) / 50)


def test_robustness_check_wants_one_gain_per_case():
    with pytest.raises(ValueError, match="one gain per case"):
        robustness_check(_cases(3), [1.0, 0.0], {})


@pytest.mark.django_db
def test_run_evaluation_reports_robustness_only_when_asked():
    plain = run_evaluation(path=TINY, k=1, model="popularity")
    checked = run_evaluation(path=TINY, k=1, model="popularity", robustness=True)

    assert "robustness" not in plain.as_dict()
    report = checked.as_dict()["robustness"]
    assert report["early_users"] + report["late_users"] == checked.users
    assert len(report["bootstrap_ndcg"]) == 2
    assert checked.ndcg == plain.ndcg
