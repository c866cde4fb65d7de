"""The experiment report's statistics: exact values against scipy where it has the test, closed forms otherwise."""

import math
import random
import statistics as pystats

import pytest
from scipy import stats

from recommendations.statistics import (
    RatioSample,
    Sample,
    always_valid_interval,
    chi2_sf,
    difference_interval,
    mean_interval,
    mixture_likelihood_ratio,
    proportion_sample,
    ratio_interval,
    sample_ratio_test,
    sign_test,
)


def sample_of(values: list[float]) -> Sample:
    return Sample(n=len(values), total=sum(values), total_squares=sum(v * v for v in values))


def test_sample_mean_and_variance_match_the_textbook_formulas() -> None:
    values = [0.0, 0.0, 12.5, 40.0, 7.25, 0.0]
    sample = sample_of(values)
    assert sample.mean == pytest.approx(pystats.mean(values), rel=1e-15)
    assert sample.variance == pytest.approx(pystats.variance(values), rel=1e-12)
    assert Sample(n=1, total=3.0, total_squares=9.0).variance == 0.0
    assert Sample(n=0, total=0.0, total_squares=0.0).mean == 0.0


def test_mixture_interval_has_the_closed_form_half_width() -> None:
    # v = tau2 = 1, alpha = 0.05: half width = sqrt(2 (2 ln 20 + ln 2)) = sqrt(2 ln 800).
    interval = always_valid_interval(estimate=0.5, variance=1.0, tau2=1.0, alpha=0.05)
    assert interval.low == pytest.approx(0.5 - math.sqrt(2 * math.log(800)), rel=1e-14)
    assert interval.high == pytest.approx(0.5 + math.sqrt(2 * math.log(800)), rel=1e-14)
    assert interval.p_value == 1.0  # L(0) = e^(1/16) / sqrt(2) < 1


def test_mixture_p_value_is_the_inverse_likelihood_ratio() -> None:
    # d = 5, v = tau2 = 1: L = exp(25 / 4) / sqrt(2), so p = sqrt(2) e^(-6.25).
    assert mixture_likelihood_ratio(estimate=5.0, variance=1.0, tau2=1.0) == pytest.approx(
        math.exp(6.25) / math.sqrt(2), rel=1e-14
    )
    interval = always_valid_interval(estimate=5.0, variance=1.0, tau2=1.0)
    assert interval.p_value == pytest.approx(math.sqrt(2) * math.exp(-6.25), rel=1e-14)
    assert interval.significant is True


def test_interval_boundary_is_where_the_likelihood_ratio_reaches_one_over_alpha() -> None:
    interval = always_valid_interval(estimate=2.0, variance=0.3, tau2=0.05, alpha=0.1)
    assert interval.high is not None
    ratio = mixture_likelihood_ratio(estimate=2.0, variance=0.3, tau2=0.05, null=interval.high)
    assert ratio == pytest.approx(10.0, rel=1e-12)


def test_always_valid_interval_is_wider_than_the_fixed_horizon_one() -> None:
    interval = always_valid_interval(estimate=0.0, variance=0.01, tau2=0.01)
    assert interval.high is not None
    assert interval.high > stats.norm.ppf(0.975) * math.sqrt(0.01)


def test_no_interval_without_variance() -> None:
    interval = always_valid_interval(estimate=3.0, variance=0.0, tau2=1.0)
    assert (interval.low, interval.high, interval.p_value, interval.significant) == (None, None, None, False)
    assert mean_interval(sample=Sample(n=1, total=5.0, total_squares=25.0)).low is None


def test_mean_interval_uses_the_variance_at_the_planned_size_as_mixing_variance() -> None:
    sample = sample_of([1.0, 2.0, 3.0, 4.0])  # mean 2.5, variance 5/3
    interval = mean_interval(sample=sample, planned=4)
    expected = always_valid_interval(estimate=2.5, variance=(5 / 3) / 4, tau2=(5 / 3) / 4)
    assert (interval.low, interval.high) == (expected.low, expected.high)


def test_difference_interval_uses_welch_variance() -> None:
    control = sample_of([0.0, 10.0, 0.0, 20.0])  # mean 7.5, variance 275/3
    treatment = sample_of([5.0, 15.0, 25.0])  # mean 15, variance 100
    interval = difference_interval(control=control, treatment=treatment, planned=10)
    v = (275 / 3) / 4 + 100 / 3
    tau2 = 2 * ((275 / 3 + 100) / 2) / 10
    half = math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(20) + math.log((v + tau2) / v)))
    assert interval.estimate == 7.5
    assert interval.low == pytest.approx(7.5 - half, rel=1e-12)
    assert interval.high == pytest.approx(7.5 + half, rel=1e-12)


def test_proportion_sample_has_the_bernoulli_variance() -> None:
    sample = proportion_sample(successes=30, trials=200)
    assert sample.mean == 0.15
    assert sample.variance == pytest.approx(0.15 * 0.85 * 200 / 199, rel=1e-12)


def test_peeking_every_day_keeps_the_error_rate_of_the_mixture_test_below_alpha() -> None:
    """A/A tests looked at after every 20 visitors: z > 1.96 rejects often, the always-valid interval rarely."""
    rng = random.Random(20261203)
    runs, looks, batch = 200, 25, 20
    naive = valid = 0
    for _ in range(runs):
        a: list[float] = []
        b: list[float] = []
        naive_hit = valid_hit = False
        for _ in range(looks):
            a.extend(rng.gauss(10, 3) for _ in range(batch))
            b.extend(rng.gauss(10, 3) for _ in range(batch))
            interval = difference_interval(control=sample_of(a), treatment=sample_of(b), planned=200)
            se = math.sqrt(pystats.variance(a) / len(a) + pystats.variance(b) / len(b))
            naive_hit = naive_hit or abs(pystats.mean(b) - pystats.mean(a)) / se > 1.96
            valid_hit = valid_hit or interval.significant
        naive += naive_hit
        valid += valid_hit
    assert valid / runs <= 0.05
    assert naive / runs > 0.1


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("statistic", [0.01, 0.4, 3.84, 10.83, 25.0, 80.0])
def test_chi2_survival_matches_scipy(df: int, statistic: float) -> None:
    assert chi2_sf(statistic=statistic, df=df) == pytest.approx(stats.chi2.sf(statistic, df), rel=1e-10, abs=1e-300)


def test_chi2_survival_of_zero_is_one() -> None:
    assert chi2_sf(statistic=0.0, df=3) == 1.0


def test_sample_ratio_test_matches_scipy_chisquare() -> None:
    observed = {"network": 5210, "local": 4790, "holdout": 1100}
    weights = {"network": 45, "local": 45, "holdout": 10}
    result = sample_ratio_test(observed=observed, weights=weights)
    total = 11100
    reference = stats.chisquare([5210, 4790, 1100], [total * 0.45, total * 0.45, total * 0.1])
    assert result is not None
    assert result.statistic == pytest.approx(float(reference.statistic), rel=1e-12)
    assert result.p_value == pytest.approx(float(reference.pvalue), rel=1e-9)
    assert result.df == 2
    assert result.mismatch is True  # 5210 vs 4790 at 45/45 is far off


def test_sample_ratio_test_passes_a_fair_split() -> None:
    result = sample_ratio_test(observed={"network": 510, "local": 490}, weights={"network": 1, "local": 1})
    assert result is not None
    assert result.statistic == pytest.approx(0.4, rel=1e-12)
    assert result.p_value == pytest.approx(0.5270892568655381, rel=1e-9)
    assert result.mismatch is False


def test_sample_ratio_test_needs_two_arms_and_visitors() -> None:
    assert sample_ratio_test(observed={"network": 10}, weights={"network": 1}) is None
    assert sample_ratio_test(observed={}, weights={"network": 1, "local": 1}) is None


@pytest.mark.parametrize(("wins", "losses"), [(60, 40), (3, 7), (0, 12), (500, 430), (5000, 5200), (7, 7)])
def test_sign_test_matches_scipy_binomtest(wins: int, losses: int) -> None:
    expected = stats.binomtest(wins, wins + losses, 0.5).pvalue
    assert sign_test(wins=wins, losses=losses) == pytest.approx(expected, rel=1e-9)


def test_sign_test_closed_forms() -> None:
    assert sign_test(wins=0, losses=0) == 1.0
    assert sign_test(wins=0, losses=10) == pytest.approx(2 / 1024, rel=1e-12)
    assert sign_test(wins=3, losses=7) == pytest.approx(0.34375, rel=1e-12)  # 2 * 176 / 1024
    with pytest.raises(ValueError):
        sign_test(wins=-1, losses=3)


def test_clipping_cuts_an_interval_to_the_possible_values() -> None:
    interval = always_valid_interval(estimate=0.1, variance=0.04, tau2=0.01)
    clipped = interval.clipped(low=0.0, high=1.0)
    assert interval.low is not None and interval.low < 0
    assert interval.high is not None and interval.high > 1
    assert (clipped.low, clipped.high, clipped.estimate, clipped.p_value) == (0.0, 1.0, 0.1, interval.p_value)
    assert interval.clipped(high=5.0).high == interval.high
    empty = always_valid_interval(estimate=0.1, variance=0.0, tau2=0.01)
    assert empty.clipped(low=0.0) == empty


def test_ratio_variance_is_the_delta_method_on_per_visitor_pairs() -> None:
    # Visitors (clicks, impressions): (1, 4), (0, 2), (2, 2), (0, 4): CTR = 3 / 12 = 0.25.
    pairs = [(1.0, 4.0), (0.0, 2.0), (2.0, 2.0), (0.0, 4.0)]
    sample = RatioSample(
        n=4,
        x=sum(c for c, _ in pairs),
        y=sum(m for _, m in pairs),
        xx=sum(c * c for c, _ in pairs),
        yy=sum(m * m for _, m in pairs),
        xy=sum(c * m for c, m in pairs),
    )
    # By hand: residuals c - 0.25 m = (0, -0.5, 1.5, -1), their variance 3.5 / 3; / (n * mean(m)^2) = / 36.
    assert sample.ratio == 0.25
    assert sample.variance == pytest.approx((3.5 / 3) / 36, rel=1e-12)
    interval = ratio_interval(sample=sample, planned=4)
    expected = always_valid_interval(estimate=0.25, variance=(3.5 / 3) / 36, tau2=(3.5 / 3) / 36)
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high), rel=1e-12)


def test_ratio_without_impressions_has_no_interval() -> None:
    interval = ratio_interval(sample=RatioSample(n=3, x=0.0, y=0.0, xx=0.0, yy=0.0, xy=0.0))
    assert (interval.low, interval.high) == (None, None)
