"""What an A/B split (and its holdout) says, honestly, at B2B volumes. Pure: numbers in, numbers and words out.

Marketers look every day, and a test read at every look finds false winners. So an experiment has a fixed
horizon, stated up front: the leads each arm needs to detect the smallest lift worth acting on (95 % confidence,
80 % power). Before every arm reaches it, the verdict is "not enough data yet", with the count still needed; the
intervals and the probability of being best are shown all along, for orientation, not for deciding."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA, POWER = 0.05, 0.80
DEFAULT_LIFT = 0.10  # the smallest difference worth acting on, in conversion-rate points: 10 % → 20 %
ASSUMED_RATE = 0.10  # the control's rate, until it has converted anyone to estimate it from


@dataclass(frozen=True)
class Arm:
    name: str
    leads: int
    conversions: int
    rate: float
    low: float  # 95 % Wilson score interval
    high: float
    prob_best: float  # under uniform priors (Beta-Binomial)


@dataclass(frozen=True)
class Comparison:
    arm: str
    control: str
    difference: float  # arm's rate minus control's
    low: float  # 95 % interval of the difference (Newcombe's hybrid score)
    high: float
    p_value: float  # Fisher's exact test, two-sided


@dataclass(frozen=True)
class Verdict:
    arms: list[Arm]
    comparisons: list[Comparison]
    needed_per_arm: int
    decided: bool  # every arm has reached the horizon
    winner: str | None
    words: str


def wilson(conversions: int, leads: int) -> tuple[float, float]:
    if leads == 0:
        return 0.0, 1.0
    ci = stats.binomtest(conversions, leads).proportion_ci(confidence_level=1 - ALPHA, method="wilson")
    return float(ci.low), float(ci.high)


def newcombe(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float]:
    """Interval of p2 - p1 from the two Wilson intervals (Newcombe 1998, method 10)."""
    p1, p2 = c1 / n1 if n1 else 0.0, c2 / n2 if n2 else 0.0
    (l1, u1), (l2, u2) = wilson(c1, n1), wilson(c2, n2)
    d = p2 - p1
    return d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)


def fisher(c1: int, n1: int, c2: int, n2: int) -> float:
    return float(stats.fisher_exact([[c2, n2 - c2], [c1, n1 - c1]]).pvalue)


def prob_best(arms: list[tuple[int, int]]) -> list[float]:
    """P(each arm's true rate is the highest), Beta(1 + c, 1 + n - c) posteriors, integrated on a fine grid:
    the same answer every time, unlike sampling."""
    x = np.linspace(0.0, 1.0, 4001)
    pdfs = [stats.beta.pdf(x, 1 + c, 1 + n - c) for c, n in arms]
    cdfs = [stats.beta.cdf(x, 1 + c, 1 + n - c) for c, n in arms]
    out = []
    for i, pdf in enumerate(pdfs):
        others = np.prod([cdfs[j] for j in range(len(arms)) if j != i], axis=0) if len(arms) > 1 else 1.0
        out.append(float(np.trapezoid(pdf * others, x)))
    total = sum(out) or 1.0
    return [p / total for p in out]


def needed_per_arm(base: float, lift: float) -> int:
    """Leads per arm to detect base → base + lift with a two-sided test at ALPHA and POWER (normal approximation)."""
    p1 = min(max(base, 0.001), 0.999)
    p2 = min(p1 + lift, 0.999)
    z_a, z_b = stats.norm.ppf(1 - ALPHA / 2), stats.norm.ppf(POWER)
    pooled = (p1 + p2) / 2
    n = (z_a * math.sqrt(2 * pooled * (1 - pooled)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2
    return math.ceil(n / (p2 - p1) ** 2)


def _pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def analyse(counts: list[tuple[str, int, int]], control: str, lift: float = DEFAULT_LIFT) -> Verdict:
    """`counts`: (arm, leads, conversions); `control` names the arm the others are compared with."""
    by_name = {name: (n, c) for name, n, c in counts}
    if control not in by_name:
        raise ValueError(f"no arm named '{control}' to compare with")
    bests = prob_best([(c, n) for _, n, c in counts])
    arms = [Arm(name, n, c, c / n if n else 0.0, *wilson(c, n), bests[i]) for i, (name, n, c) in enumerate(counts)]
    n0, c0 = by_name[control]
    comparisons = [Comparison(a.name, control, a.rate - (c0 / n0 if n0 else 0.0), *newcombe(c0, n0, a.conversions,
                                                                                             a.leads),
                              fisher(c0, n0, a.conversions, a.leads)) for a in arms if a.name != control]
    base = c0 / n0 if n0 and c0 else ASSUMED_RATE
    needed = needed_per_arm(base, lift)
    short = [(a.name, needed - a.leads) for a in arms if a.leads < needed]
    target = f"a lift from {_pct(base)} to {_pct(min(base + lift, 1))}"
    if short:
        to_go = ", ".join(f"{name} {missing}" for name, missing in short)
        words = (f"Not enough data yet: each arm needs {needed} leads to detect {target} (95 % confidence, 80 % "
                 f"power); still to come: {to_go}. Deciding before then is how false winners are found.")
        return Verdict(arms, comparisons, needed, False, None, words)
    threshold = ALPHA / max(len(comparisons), 1)  # Bonferroni: several arms are several chances to be fooled
    better = [c for c in comparisons if c.p_value < threshold and c.difference > 0]
    worse = [c for c in comparisons if c.p_value < threshold and c.difference < 0]
    if better:
        best = max(better, key=lambda c: c.difference)
        rate = {a.name: a.rate for a in arms}
        words = (f"{best.arm} converts better than {control}: {_pct(rate[best.arm])} against {_pct(rate[control])}, "
                 f"{best.difference * 100:+.1f} points (95 % interval {best.low * 100:+.1f} to "
                 f"{best.high * 100:+.1f}), p = {best.p_value:.3f}.")
        return Verdict(arms, comparisons, needed, True, best.arm, words)
    if worse:
        words = f"{control} converts better than {', '.join(c.arm for c in worse)}; keep {control}."
        return Verdict(arms, comparisons, needed, True, control, words)
    words = (f"No difference found: every arm has its {needed} leads, and none differs from {control} by more than "
             f"chance explains. A lift smaller than {lift * 100:.0f} points may still exist; this test could not "
             "see it.")
    return Verdict(arms, comparisons, needed, True, None, words)
