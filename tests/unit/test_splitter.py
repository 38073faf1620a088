"""PhraseSplitter: one stream's audio shared out among the phrases pushed on it, in order.

Rules checked here: every byte goes to exactly one phrase, in order, indices never decreasing; audio that
arrived before a phrase was pushed never goes to it (or a later one); with durations proportional to the
characters at the splitter's rate, each hand-over lands between the true boundary and ``margin`` of the
phrase's length after it; the last phrase pushed takes whatever comes, however long.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.splitter import MARGIN, PhraseSplitter

texts = st.lists(
    st.text(alphabet="abc .,", min_size=1, max_size=40).filter(str.strip), min_size=1, max_size=6
)


def chars(text: str) -> int:
    return len(text.strip())


@given(
    texts,
    st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=30),
    st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=30),
    st.floats(min_value=0.5, max_value=40),
)
def test_every_byte_goes_to_one_phrase_in_order_and_never_to_one_not_yet_pushed(
    phrases: list[str], chunks: list[int], pushes: list[int], bytes_per_char: float
) -> None:
    splitter = PhraseSplitter(bytes_per_char)
    splitter.push(phrases[0])
    pending = phrases[1:]
    fed = bytearray()
    got: list[tuple[int, bytes]] = []
    for i, size in enumerate(chunks):
        for _ in range(pushes[i % len(pushes)] if pending else 0):
            if pending:
                splitter.push(pending.pop(0))
        pushed = len(splitter)
        chunk = bytes((len(fed) + k) % 251 for k in range(size))
        fed += chunk
        pieces = splitter.feed(chunk)
        assert all(piece for _, piece in pieces)
        assert all(index < pushed for index, _ in pieces)  # only phrases already pushed
        got += pieces
    assert b"".join(piece for _, piece in got) == bytes(fed)
    indices = [index for index, _ in got]
    assert indices == sorted(indices)
    assert splitter.received == len(fed)
    assert splitter.current >= indices[-1]  # it moves on as soon as a hand-over is reached


@given(texts, st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=40))
def test_with_the_true_rate_each_phrase_ends_on_time_or_up_to_the_margin_late(
    phrases: list[str], chunk_sizes: list[int]
) -> None:
    rate = 8.0  # bytes per character, the same as the "service" below
    splitter = PhraseSplitter(rate)
    for text in phrases:
        splitter.push(text)
    lengths = [round(chars(t) * rate) for t in phrases]
    stream = bytes(sum(lengths))
    got = [0] * len(phrases)
    offset = 0
    i = 0
    while offset < len(stream):
        size = chunk_sizes[i % len(chunk_sizes)]
        i += 1
        for index, piece in splitter.feed(stream[offset : offset + size]):
            got[index] += len(piece)
        offset += size
    true_end = 0
    our_end = 0
    for k in range(len(phrases) - 1):
        true_end += lengths[k]
        our_end += got[k]
        assert true_end <= our_end <= true_end + MARGIN * lengths[k] + 1, (k, got, lengths)
    assert sum(got) == len(stream)  # the last phrase ends exactly with the stream


def test_audio_before_the_next_push_stays_with_the_phrase_even_past_its_estimate() -> None:
    splitter = PhraseSplitter(10.0)
    splitter.push("abcde")  # estimated 50 bytes
    assert splitter.feed(bytes(120)) == [(0, bytes(120))]  # longer than estimated: nothing else exists
    splitter.push("fghij")  # pushed at 120: it cannot have started earlier
    assert splitter.current == 1
    assert splitter.feed(bytes(30)) == [(1, bytes(30))]


def test_a_shorter_phrase_than_estimated_gives_the_next_ones_start_to_it_and_the_end_is_exact() -> None:
    splitter = PhraseSplitter(10.0, margin=0.0)
    splitter.push("abcdefghij")  # estimated 100
    splitter.push("klmno")  # estimated 50, from 100
    pieces = splitter.feed(bytes(80) + b"\1" * 90)  # really 80 then 90
    assert [(i, len(p)) for i, p in pieces] == [(0, 100), (1, 70)]  # the estimate, then the rest


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        PhraseSplitter(0)
    with pytest.raises(ValueError):
        PhraseSplitter(1.0).feed(b"x")
