"""Thresholds of the statistical tests, from a stated false-alarm rate and power.

A statistical test counts successes over independent replicates (intervals that cover
the truth, intervals that exclude zero) and asserts the count lies in the binomial
acceptance region of the rate it should have. The region is computed here, from the
test's share of the suite-wide budget of false alarms, never picked by hand; so a new
random stream (any PyMC, nutpie or NumPy upgrade redraws every replicate) fails a correct
implementation with at most that probability, and the same numbers say how often a real
miscalibration is caught. docs/testing.md lists each test with its numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Each statistical test may fail a correct implementation on at most this share of fresh
# random streams; a test making k comparisons gives each FALSE_ALARM / k (Bonferroni).
FALSE_ALARM = 0.001


@dataclass(frozen=True)
class Region:
    """Accepted counts lo..hi of n Bernoulli(p) trials; outside that, the test fails."""

    n: int
    p: float
    lo: int
    hi: int

    def __contains__(self, count: int) -> bool:
        return self.lo <= count <= self.hi

    def false_alarm(self) -> float:
        """The probability a correct implementation (rate p) falls outside."""
        return self.fails_when(self.p)

    def fails_when(self, rate: float) -> float:
        """The probability the test fails when the true rate is `rate`."""
        from scipy import stats

        return float(
            stats.binom.cdf(self.lo - 1, self.n, rate) + stats.binom.sf(self.hi, self.n, rate)
        )

    def __str__(self) -> str:
        return f"{self.lo}..{self.hi} of {self.n} (rate {self.p:.4f})"


def region(n: int, p: float, alpha: float, side: str = "both") -> Region:
    """The widest region that fails a rate-p count with probability <= alpha.

    side "both" splits alpha between the tails, "lower" only fails too few successes (an
    interval too narrow), "upper" only too many.
    """
    from scipy import stats

    low_alpha = {"both": alpha / 2, "lower": alpha, "upper": 0.0}[side]
    high_alpha = {"both": alpha / 2, "lower": 0.0, "upper": alpha}[side]
    lo = 0
    if low_alpha > 0:
        # the largest lo with P(X < lo) <= low_alpha
        lo = int(stats.binom.ppf(low_alpha, n, p))
        while lo > 0 and stats.binom.cdf(lo - 1, n, p) > low_alpha:
            lo -= 1
        while stats.binom.cdf(lo, n, p) <= low_alpha:
            lo += 1
    hi = n
    if high_alpha > 0:
        # the smallest hi with P(X > hi) <= high_alpha
        hi = int(stats.binom.isf(high_alpha, n, p))
        while hi < n and stats.binom.sf(hi, n, p) > high_alpha:
            hi += 1
        while hi > 0 and stats.binom.sf(hi - 1, n, p) <= high_alpha:
            hi -= 1
    return Region(n, p, lo, hi)


def normal_mean_interval_rate(mu: float, n_obs: int, prior_sd: float, interval: float) -> tuple:
    """(coverage, power) of the central `interval` posterior interval of a normal mean with
    known unit SD and a Normal(0, prior_sd) prior, over data sets drawn with mean `mu`:
    exact (the posterior is conjugate), so a study's counts can be held against them."""
    from scipy import stats

    se = 1 / math.sqrt(n_obs)
    shrink = prior_sd**2 / (prior_sd**2 + se**2)  # posterior mean = shrink * ybar
    post_sd = math.sqrt(shrink) * se
    z = stats.norm.ppf(0.5 + interval / 2)
    # covered: |shrink * ybar - mu| <= z * post_sd, ybar ~ Normal(mu, se)
    lo, hi = (mu - z * post_sd) / shrink, (mu + z * post_sd) / shrink
    coverage = stats.norm.cdf(hi, mu, se) - stats.norm.cdf(lo, mu, se)
    # excludes zero: |shrink * ybar| > z * post_sd
    edge = z * post_sd / shrink
    power = stats.norm.sf(edge, mu, se) + stats.norm.cdf(-edge, mu, se)
    return float(coverage), float(power)
