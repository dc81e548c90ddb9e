"""The statistics behind a split's verdict agree with published reference values, and the verdict waits for the
sample size it names before it calls a winner."""

from __future__ import annotations

import pytest
from scipy import special

from engine.experiments import analyse, fisher, needed_per_arm, newcombe, prob_best, wilson


def test_intervals_and_exact_tests_match_reference_values() -> None:
    assert wilson(10, 100) == pytest.approx((0.0552, 0.1744), abs=1e-4)  # Wilson (1927), as in Agresti & Coull
    assert newcombe(48, 80, 56, 70) == pytest.approx((0.0524, 0.3339), abs=1e-4)  # Newcombe (1998), example (a)
    assert fisher(1, 4, 3, 4) == pytest.approx(0.4857, abs=1e-4)  # the 2x2 table [[3, 1], [1, 3]]
    assert needed_per_arm(0.10, 0.10) == 199  # 10 % → 20 %, two-sided 5 %, power 80 %


def test_the_chance_of_being_best_matches_the_closed_form() -> None:
    def b_beats_a(ca: int, na: int, cb: int, nb: int) -> float:  # Evan Miller's exact sum for two Beta posteriors
        a1, b1, a2, b2 = ca + 1, na - ca + 1, cb + 1, nb - cb + 1
        return float(sum(special.beta(a1 + i, b1 + b2) / ((b2 + i) * special.beta(1 + i, b2) * special.beta(a1, b1))
                         for i in range(a2)))
    assert prob_best([(10, 100), (18, 100)])[1] == pytest.approx(b_beats_a(10, 100, 18, 100), abs=1e-4)
    assert sum(prob_best([(3, 40), (5, 40), (9, 40)])) == pytest.approx(1)


def test_no_winner_is_called_before_every_arm_has_the_leads_the_page_names() -> None:
    early = analyse([("A", 190, 19), ("B", 199, 40)], "A")  # the control's 10 % sets the horizon: 199 each
    assert not early.decided and early.winner is None
    assert early.words.startswith("Not enough data yet: each arm needs 199 leads to detect a lift from 10.0 % to "
                                  "20.0 %") and "still to come: A 9." in early.words
    assert early.comparisons[0].p_value < 0.01, "the difference looks large, and still no winner is called"
    ready = analyse([("A", 200, 20), ("B", 200, 40)], "A")
    assert ready.decided and ready.winner == "B"
    assert ready.words.startswith("B converts better than A: 20.0 % against 10.0 %, +10.0 points")
    same = analyse([("A", 300, 30), ("B", 300, 33)], "A")
    assert same.decided and same.winner is None and same.words.startswith("No difference found")
