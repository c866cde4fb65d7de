"""Statistics of the portal's experiment report, as pure functions (no Django, no database).

- Always-valid confidence intervals and p-values from the normal-mixture sequential probability ratio test
  (mSPRT: Robbins 1970; Johari, Koomen, Pekelis and Walsh, "Always valid inference: continuous monitoring of A/B
  tests", Operations Research 2022; Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric,
  nonasymptotic confidence sequences", Annals of Statistics 2021). For an estimate d ~ N(theta, v) and a
  N(0, tau2) mixture over theta the likelihood ratio against theta0 is
      L = sqrt(v / (v + tau2)) * exp(tau2 * (d - theta0)^2 / (2 v (v + tau2)))
  and {theta0 : L < 1/alpha} is a confidence sequence: looking every day does not inflate the error rate.
- A sample-ratio-mismatch check: Pearson's chi-square goodness of fit of visitors per arm against the weights.
- A sign test (exact two-sided binomial at p = 1/2) of interleaved clicks credited to network vs local.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

DEFAULT_ALPHA: Final = 0.05
# The mixture is tuned to be tightest when each group has about this many visitors (Howard et al. §3.5): the
# mixing variance is the variance the estimate would have at that sample size.
PLANNED_VISITORS: Final = 1000
SRM_ALPHA: Final = 0.001


@dataclass(frozen=True)
class Sample:
    """Per-visitor values of one group, summarised: count, sum and sum of squares."""

    n: int
    total: float
    total_squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The unbiased sample variance (0 below two visitors; never negative from rounding)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_squares - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True)
class Interval:
    """An estimate with its always-valid confidence interval and p-value (of estimate = 0); None: not enough data."""

    estimate: float
    low: float | None
    high: float | None
    p_value: float | None

    @property
    def significant(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def clipped(self, *, low: float | None = None, high: float | None = None) -> "Interval":
        """The interval cut to the values the quantity can take (a rate lies in [0, 1], revenue is never negative)."""
        if self.low is None or self.high is None:
            return self
        new_low = self.low if low is None else max(low, self.low)
        new_high = self.high if high is None else min(high, self.high)
        return Interval(estimate=self.estimate, low=new_low, high=new_high, p_value=self.p_value)


def mixture_likelihood_ratio(*, estimate: float, variance: float, tau2: float, null: float = 0.0) -> float:
    """The normal-mixture likelihood ratio of `null` given an estimate with this variance (see the module doc)."""
    if variance <= 0 or tau2 <= 0:
        raise ValueError("variance and tau2 must be positive")
    exponent = tau2 * (estimate - null) ** 2 / (2 * variance * (variance + tau2))
    return math.sqrt(variance / (variance + tau2)) * math.exp(min(exponent, 700.0))


def always_valid_interval(*, estimate: float, variance: float, tau2: float, alpha: float = DEFAULT_ALPHA) -> Interval:
    """The always-valid (1 - alpha) interval {theta : L(theta) < 1/alpha} and p-value min(1, 1/L(0))."""
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")
    if variance <= 0 or tau2 <= 0:
        return Interval(estimate=estimate, low=None, high=None, p_value=None)
    half = math.sqrt(
        variance * (variance + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log((variance + tau2) / variance))
    )
    ratio = mixture_likelihood_ratio(estimate=estimate, variance=variance, tau2=tau2)
    return Interval(estimate=estimate, low=estimate - half, high=estimate + half, p_value=min(1.0, 1 / ratio))


def mean_interval(*, sample: Sample, alpha: float = DEFAULT_ALPHA, planned: int = PLANNED_VISITORS) -> Interval:
    """Always-valid interval of one group's mean per visitor (mixing variance: the variance at `planned` visitors)."""
    if sample.n < 2:
        return Interval(estimate=sample.mean, low=None, high=None, p_value=None)
    sigma2 = sample.variance
    return always_valid_interval(estimate=sample.mean, variance=sigma2 / sample.n, tau2=sigma2 / planned, alpha=alpha)


def difference_interval(
    *, control: Sample, treatment: Sample, alpha: float = DEFAULT_ALPHA, planned: int = PLANNED_VISITORS
) -> Interval:
    """Always-valid interval of mean(treatment) - mean(control) per visitor (Welch variance, mixture at `planned`)."""
    estimate = treatment.mean - control.mean
    if control.n < 2 or treatment.n < 2:
        return Interval(estimate=estimate, low=None, high=None, p_value=None)
    variance = control.variance / control.n + treatment.variance / treatment.n
    pooled = (control.variance + treatment.variance) / 2
    return always_valid_interval(estimate=estimate, variance=variance, tau2=2 * pooled / planned, alpha=alpha)


@dataclass(frozen=True)
class RatioSample:
    """Per-visitor pairs (x, y) summarised, for a ratio of sums such as CTR = sum(clicks) / sum(impressions)."""

    n: int
    x: float
    y: float
    xx: float
    yy: float
    xy: float

    @property
    def ratio(self) -> float | None:
        return self.x / self.y if self.y else None

    @property
    def variance(self) -> float:
        """Delta-method variance of the ratio, visitors as the unit (their impressions are not independent)."""
        if self.n < 2 or not self.y:
            return 0.0
        r = self.x / self.y
        mean_y = self.y / self.n
        sxx = (self.xx - self.x * self.x / self.n) / (self.n - 1)
        syy = (self.yy - self.y * self.y / self.n) / (self.n - 1)
        sxy = (self.xy - self.x * self.y / self.n) / (self.n - 1)
        return max(0.0, (sxx - 2 * r * sxy + r * r * syy) / (self.n * mean_y * mean_y))


def ratio_interval(*, sample: RatioSample, alpha: float = DEFAULT_ALPHA, planned: int = PLANNED_VISITORS) -> Interval:
    """Always-valid interval of a ratio of per-visitor sums (delta method; mixture variance at `planned` visitors)."""
    ratio = sample.ratio
    if ratio is None:
        return Interval(estimate=0.0, low=None, high=None, p_value=None)
    variance = sample.variance
    return always_valid_interval(estimate=ratio, variance=variance, tau2=variance * sample.n / planned, alpha=alpha)


def proportion_sample(*, successes: int, trials: int) -> Sample:
    """A group of 0/1 outcomes as a Sample (its sum of squares is its sum)."""
    return Sample(n=trials, total=float(successes), total_squares=float(successes))


# --- Sample ratio mismatch ---------------------------------------------------------------------------------


def chi2_sf(*, statistic: float, df: int) -> float:
    """P(X >= statistic) for X chi-square with `df` degrees of freedom (closed form for whole df)."""
    if df < 1:
        raise ValueError("df must be at least 1")
    if statistic <= 0:
        return 1.0
    y = statistic / 2
    # Q(a, y), the regularised upper incomplete gamma, climbs by halves: Q(a + 1, y) = Q(a, y) + y^a e^-y / G(a + 1).
    if df % 2:
        a, q = 0.5, math.erfc(math.sqrt(y))
    else:
        a, q = 1.0, math.exp(-y)
    while a < df / 2:
        q += math.exp(a * math.log(y) - y - math.lgamma(a + 1))
        a += 1
    return min(1.0, q)


@dataclass(frozen=True)
class SampleRatio:
    """Pearson's chi-square of visitors per arm against the configured weights."""

    statistic: float
    df: int
    p_value: float
    expected: dict[str, float]

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_ALPHA


def sample_ratio_test(*, observed: Mapping[str, int], weights: Mapping[str, int]) -> SampleRatio | None:
    """Chi-square of `observed` counts against `weights` (arms with weight > 0); None below two arms or no visitors."""
    arms = [arm for arm, weight in weights.items() if weight > 0]
    total = sum(observed.get(arm, 0) for arm in arms)
    if len(arms) < 2 or total == 0:
        return None
    whole = sum(weights[arm] for arm in arms)
    expected = {arm: total * weights[arm] / whole for arm in arms}
    statistic = sum((observed.get(arm, 0) - expected[arm]) ** 2 / expected[arm] for arm in arms)
    df = len(arms) - 1
    return SampleRatio(statistic=statistic, df=df, p_value=chi2_sf(statistic=statistic, df=df), expected=expected)


# --- Sign test -----------------------------------------------------------------------------------------------


def _log_sum_exp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def sign_test(*, wins: int, losses: int) -> float:
    """Exact two-sided binomial p-value of `wins` out of `wins + losses` at p = 1/2 (1.0 without trials)."""
    if wins < 0 or losses < 0:
        raise ValueError("counts cannot be negative")
    n = wins + losses
    if n == 0 or wins == losses:
        return 1.0
    low = min(wins, losses)
    head = math.lgamma(n + 1) - n * math.log(2)
    log_terms = [head - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(low + 1)]
    return min(1.0, 2 * math.exp(_log_sum_exp(log_terms)))
