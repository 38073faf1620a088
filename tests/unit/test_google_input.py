"""``split_input``: Google takes at most 5,000 bytes of text per request (cloud_tts.proto SynthesisInput)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.providers.tts.google import MAX_INPUT_BYTES, split_input


def test_short_text_is_one_piece() -> None:
    assert split_input("Hello there.") == ["Hello there."]
    assert split_input("x" * MAX_INPUT_BYTES) == ["x" * MAX_INPUT_BYTES]


def test_long_text_is_cut_at_spaces() -> None:
    assert split_input("aaa bbb ccc", limit=7) == ["aaa bbb", "ccc"]
    assert split_input("aaaaaaaaaa", limit=4) == ["aaaa", "aaaa", "aa"]
    assert split_input("éééé", limit=5) == ["éé", "éé"]  # never half a character


@given(st.text(alphabet=st.sampled_from("ab é€😀\n"), max_size=60), st.integers(4, 12))
def test_pieces_fit_and_keep_every_character(text: str, limit: int) -> None:
    pieces = split_input(text, limit)
    assert all(len(p.encode()) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
