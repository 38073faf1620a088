"""``select_range``: RFC 9110 byte ranges; never an exception, whatever the header (issue 14, item 12)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.inspector.ranges import Part, Unsatisfiable, Whole, select_range

SIZE = 1000
HUGE = "9" * 5000  # int() refuses more than 4,300 digits: ValueError, which was a 500


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Whole()),
        ("bytes=0-99", Part(0, 99)),
        ("bytes=0-0", Part(0, 0)),
        ("bytes=990-", Part(990, 999)),
        ("bytes=999-999", Part(999, 999)),
        ("bytes=500-5000", Part(500, 999)),  # last clamped to the end (§14.1.2)
        ("bytes=-10", Part(990, 999)),
        ("bytes=-5000", Part(0, 999)),  # a suffix longer than the file: all of it
        ("BYTES=0-1", Part(0, 1)),  # units compare case-insensitively
        ("bytes=0007-0009", Part(7, 9)),
        (" bytes=1-2 ", Part(1, 2)),
        ("bytes=1-2, ", Part(1, 2)),  # empty list elements are ignored
        (f"bytes=0-{HUGE}", Part(0, 999)),
        (f"bytes=-{HUGE}", Part(0, 999)),
        (f"bytes={'0' * 5000}1-2", Part(1, 2)),  # 5,001 digits, value 1
        ("bytes=1000-", Unsatisfiable()),  # first at the end
        ("bytes=1000-2000", Unsatisfiable()),
        ("bytes=-0", Unsatisfiable()),  # a zero-length suffix is unsatisfiable (§14.1.1)
        (f"bytes={HUGE}-", Unsatisfiable()),  # the 5,000-digit Range
        (f"bytes={HUGE}-{HUGE}", Unsatisfiable()),
        ("bytes=5-3", Unsatisfiable()),  # last before first: invalid, rejected
        ("bytes=-", Unsatisfiable()),
        ("bytes=", Unsatisfiable()),
        ("bytes=abc-xyz", Unsatisfiable()),
        ("bytes=1-2-3", Unsatisfiable()),
        ("bytes=+1-2", Unsatisfiable()),
        ("bytes=0x10-", Unsatisfiable()),
        ("bytes=1 - 2", Unsatisfiable()),
        ("bytes=²-3", Unsatisfiable()),  # str.isdigit() says yes, HTTP's DIGIT says no
        ("bytes=١-3", Unsatisfiable()),  # Arabic-Indic one: int() would take it
        ("bytes=0-1,abc", Unsatisfiable()),
        ("bytes=0-1,5-9", Whole()),  # several ranges: ignored, the whole file (§14.2 MAY ignore)
        ("bytes=0-1,2000-", Whole()),
        ("items=0-1", Whole()),  # a unit we do not understand MUST be ignored (§14.2)
        ("bytes 0-1", Whole()),
        ("", Whole()),
        ("garbage", Whole()),
    ],
)
def test_examples(header: str | None, expected: object) -> None:
    assert select_range(header, SIZE) == expected


def test_an_empty_representation_has_no_satisfiable_range() -> None:
    for header in ("bytes=0-", "bytes=0-0", "bytes=-1", f"bytes=-{HUGE}"):
        assert select_range(header, 0) == Unsatisfiable()
    assert select_range(None, 0) == Whole()


def test_if_range_uses_the_strong_etag_exactly() -> None:
    etag = '"abc-123"'
    assert select_range("bytes=0-1", SIZE, if_range=etag, etag=etag) == Part(0, 1)
    assert select_range("bytes=0-1", SIZE, if_range=f" {etag} ", etag=etag) == Part(0, 1)
    for other in ('"abc-124"', f"W/{etag}", "Thu, 03 Dec 2026 10:00:00 GMT", ""):
        assert select_range("bytes=0-1", SIZE, if_range=other, etag=etag) == Whole()
    assert select_range("bytes=0-1", SIZE, if_range=etag) == Whole()  # no ETag of ours: cannot match


def test_content_ranges() -> None:
    assert Part(3, 9).content_range(SIZE) == "bytes 3-9/1000" and Part(3, 9).length == 7
    assert Unsatisfiable.content_range(SIZE) == "bytes */1000"


_digits = st.text("0123456789", min_size=1, max_size=6000)
_spec = st.one_of(
    st.builds(lambda a, b: f"{a}-{b}", _digits, _digits),
    st.builds(lambda a: f"{a}-", _digits),
    st.builds(lambda b: f"-{b}", _digits),
    st.text(max_size=40),
)
_header = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.builds(lambda unit, specs: f"{unit}={', '.join(specs)}", st.sampled_from(["bytes", "Bytes", "x"]),
              st.lists(_spec, min_size=0, max_size=4)),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    header=_header, size=st.integers(min_value=0, max_value=10**12), if_range=st.none() | st.text(max_size=8)
)
def test_never_raises_and_every_part_lies_inside(header: str | None, size: int, if_range: str | None) -> None:
    selection = select_range(header, size, if_range=if_range, etag='"e"')
    assert isinstance(selection, Whole | Part | Unsatisfiable)
    if isinstance(selection, Part):
        assert 0 <= selection.start <= selection.end < size
        assert header is not None


@settings(max_examples=300, deadline=None)
@given(size=st.integers(min_value=1, max_value=10**9), data=st.data())
def test_valid_single_ranges_match_their_arithmetic(size: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(min_value=0, max_value=2 * size))
    last = data.draw(st.integers(min_value=first, max_value=3 * size))
    zeros = "0" * data.draw(st.integers(min_value=0, max_value=3))
    expected_int = Part(first, min(last, size - 1)) if first < size else Unsatisfiable()
    assert select_range(f"bytes={zeros}{first}-{zeros}{last}", size) == expected_int
    assert select_range(f"bytes={first}-", size) == (
        Part(first, size - 1) if first < size else Unsatisfiable()
    )
    suffix = data.draw(st.integers(min_value=0, max_value=2 * size))
    expected_suffix = Part(max(0, size - suffix), size - 1) if suffix else Unsatisfiable()
    assert select_range(f"bytes=-{suffix}", size) == expected_suffix
    assert select_range(f"bytes={last + 1}-{first}", size) == Unsatisfiable()  # reversed: invalid


@settings(max_examples=200, deadline=None)
@given(size=st.integers(min_value=0, max_value=10**15), extra=st.integers(min_value=0, max_value=5000))
def test_numbers_longer_than_int_accepts_compare_as_huge(size: int, extra: int) -> None:
    digits = "1" + "0" * (len(str(size)) + extra)  # always larger than size
    assert select_range(f"bytes={digits}-", size) == Unsatisfiable()
    if size:
        assert select_range(f"bytes=0-{digits}", size) == Part(0, size - 1)
        assert select_range(f"bytes=-{digits}", size) == Part(0, size - 1)
