"""Which bytes of a representation a request's ``Range`` (and ``If-Range``) header asks for (RFC 9110 §14).

Rules:
- No ``Range``, a range unit other than ``bytes`` (compared case-insensitively, RFC 9110 §14.1: an
  origin server MUST ignore a unit it does not understand, §14.2), or an ``If-Range`` that does not
  match the representation's strong ETag exactly (§13.1.5: a date never matches, we send no
  Last-Modified): the whole representation (``Whole``, 200).
- ``bytes=`` with exactly one range spec: ``first-last`` (``last`` clamped to the end), ``first-`` or
  the suffix ``-length`` is a ``Part`` (206) when satisfiable (§14.1.1: ``first`` inside the
  representation, a suffix length above 0). Several specs (all valid): the whole representation, as
  §14.2 allows ("A server MAY ignore the Range header field"): the player asks for one range at a time,
  and a multipart answer is not worth its code.
- Anything else after ``bytes=`` (not digits, ``last`` before ``first``, a missing ``-``, no spec at
  all) is an invalid ranges-specifier, and an unsatisfiable one is unsatisfiable: both
  ``Unsatisfiable`` (416 with ``Content-Range: bytes */<size>``). §14.2 lets a server "ignore or reject
  a Range header field that contains an invalid ranges-specifier"; rejecting tells a broken client at
  once and costs nothing, where ignoring would send the whole file.
- Numbers of any length parse without ``int()`` on the digits as given (Python refuses strings of
  more than 4,300 digits, ``sys.get_int_max_str_digits``): leading zeros are dropped and a number
  longer than the size's own digits only compares as "larger than any offset". A 5,000-digit offset is
  unsatisfiable (416), a 5,000-digit ``last`` or suffix just means "to the end".
- Pure: strings and a size in, a frozen value out; never raises on any header text.
"""

from __future__ import annotations

from dataclasses import dataclass

_OWS = " \t"  # optional whitespace around list elements (RFC 9110 §5.6.1, §5.6.3)
_DIGITS = frozenset("0123456789")  # ASCII only: str.isdigit() also accepts "²" and Arabic-Indic digits


@dataclass(frozen=True)
class Whole:
    """Send the whole representation (200)."""


@dataclass(frozen=True)
class Part:
    """Send bytes ``start`` to ``end`` inclusive (206), ``0 <= start <= end < size``."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


@dataclass(frozen=True)
class Unsatisfiable:
    """416: no byte of the representation is asked for in a way we accept."""

    @staticmethod
    def content_range(size: int) -> str:
        return f"bytes */{size}"


Selection = Whole | Part | Unsatisfiable


def _number(digits: str, size: int) -> int | None:
    """The value of a run of ASCII digits, saturated just past ``size``; None if not digits."""
    if not digits or not set(digits) <= _DIGITS:
        return None
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(size)):
        return size + 1  # more digits than the size itself: larger than every offset in it
    return min(int(significant), size + 1)


def _spec(spec: str, size: int) -> Part | Unsatisfiable | None:
    """One range spec against ``size`` bytes; None if it is not a valid byte range spec."""
    first_text, dash, last_text = spec.partition("-")
    if not dash:
        return None
    if not first_text:  # suffix-range: the last N bytes
        length = _number(last_text, size)
        if length is None:
            return None
        if length == 0 or size == 0:
            return Unsatisfiable()
        return Part(max(0, size - length), size - 1)
    first = _number(first_text, size)
    last = _number(last_text, size) if last_text else size - 1
    if first is None or last is None:
        return None
    if last_text and last < first:
        return None  # §14.1.1: an int-range whose last-pos is below its first-pos is invalid
    if first >= size:
        return Unsatisfiable()
    return Part(first, min(last, size - 1))


def select_range(
    range_header: str | None, size: int, *, if_range: str | None = None, etag: str = ""
) -> Selection:
    """What to send of a ``size``-byte representation whose strong ETag is ``etag`` (see the rules)."""
    if range_header is None:
        return Whole()
    if if_range is not None and (not etag or if_range.strip(_OWS) != etag):
        return Whole()  # §13.1.5: If-Range not matching: ignore Range, send it all
    unit, equals, ranges = range_header.strip(_OWS).partition("=")
    if not equals or unit.lower() != "bytes":
        return Whole()  # not a byte range: a unit we do not understand is ignored (§14.2)
    specs = [element.strip(_OWS) for element in ranges.split(",")]
    specs = [spec for spec in specs if spec]  # empty list elements are allowed and ignored (§5.6.1)
    results = [_spec(spec, size) for spec in specs]
    if not results or any(result is None for result in results):
        return Unsatisfiable()  # an invalid ranges-specifier: rejected (§14.2 allows ignore or reject)
    if len(results) > 1:
        return Whole()
    (result,) = results
    assert result is not None
    return result
