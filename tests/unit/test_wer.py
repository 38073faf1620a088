"""bot.sim.wer: the demo's word error rate."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.sim.wer import edit_distance, word_error_rate, words


def test_normalisation_joins_numbers_and_drops_punctuation() -> None:
    assert words("My order number is 1,234.") == ["my", "order", "number", "is", "1234"]
    assert words("Order 3-4-5-6, please!") == ["order", "3456", "please"]
    assert words("That's all, bye!") == ["that's", "all", "bye"]


def test_word_error_rate() -> None:
    assert word_error_rate(["are you open on sunday"], ["Are you open on Sunday?"]) == 0.0
    assert word_error_rate(["check my order"], ["kick my order"]) == 1 / 3
    assert word_error_rate(["a b c d"], ["a c d e"]) == 2 / 4
    assert word_error_rate([], []) == 0.0


@given(st.lists(st.sampled_from("abcde"), max_size=8), st.lists(st.sampled_from("abcde"), max_size=8))
def test_edit_distance_is_a_metric(a: list[str], b: list[str]) -> None:
    assert edit_distance(a, b) == edit_distance(b, a)
    assert (edit_distance(a, b) == 0) == (a == b)
    assert abs(len(a) - len(b)) <= edit_distance(a, b) <= max(len(a), len(b))
