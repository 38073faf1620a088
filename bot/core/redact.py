"""One redaction rule for everything the bot writes down: its logs, its recordings, its tool results.

Rules:
- A secret is a configured value of ``MIN_LENGTH`` characters or more: a shorter one would blank
  ordinary words and numbers everywhere (``bot.core.secret_values`` keeps learned header values from 8).
- Each secret is looked for as written and in its JSON spelling (``json.dumps`` without the quotes:
  ``\\"``, ``\\\\``, ``\\uXXXX``), as a service that echoes it in JSON, or a logged JSON body, shows it.
- Every character of every occurrence of any secret is hidden: occurrences that overlap become one
  ``REDACTED``, so a secret that contains or overlaps another is masked whole (replacing one secret
  after another would leave part of the second readable); occurrences side by side stay two.
- ``Redactor.value`` walks nested values: mapping keys (as text) and values, lists, tuples and sets
  (as lists). A key in ``sensitive`` (case-insensitive) has its value replaced whatever it is; text is
  masked; None, bools and ints stay; anything else goes through ``leaf`` (default: floats stay, other
  objects by ``repr``) and a text it returns is masked. A container ``MAX_DEPTH`` levels down is
  ``TOO_DEEP``, so a self-referencing structure ends.
- Pure: no I/O, no global state. A ``Redactor`` is immutable; build it once per set of secrets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

REDACTED: Final = "[redacted]"
TOO_DEEP: Final = "[too deep]"
MIN_LENGTH: Final = 4
MAX_DEPTH: Final = 32

Leaf = Callable[[Any], Any]


def plain(value: Any) -> Any:
    """The default ``leaf``: a float as it is, any other object as its ``repr``."""
    return value if isinstance(value, float) else repr(value)


def spellings(secrets: Iterable[str]) -> tuple[str, ...]:
    """Every secret worth masking and its JSON spelling, longest first."""
    found = {
        spelling
        for secret in secrets
        if len(secret) >= MIN_LENGTH
        for spelling in (secret, json.dumps(secret)[1:-1])
    }
    return tuple(sorted(found, key=lambda s: (-len(s), s)))


def mask(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every character of every occurrence of ``secrets`` hidden (see the module rules);
    ``secrets`` are the exact strings to look for (``spellings`` gives them for configured secrets)."""
    for secret in secrets:  # the common case, no secret at all, with the fastest test there is
        if secret in text:
            break
    else:
        return text
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        start = text.find(secret)
        while start >= 0:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)  # overlapping occurrences too
    if not spans:
        return text
    spans.sort()
    out: list[str] = []
    done = 0  # text before this is written
    begin, end = spans[0]
    for s, e in spans[1:]:
        if s < end:  # overlaps the current run: one run
            end = max(end, e)
            continue
        out += [text[done:begin], REDACTED]
        done, (begin, end) = end, (s, e)
    out += [text[done:begin], REDACTED, text[end:]]
    return "".join(out)


@dataclass(frozen=True)
class Redactor:
    secrets: tuple[str, ...] = ()  # spellings, longest first (``spellings``)
    sensitive: frozenset[str] = frozenset()  # casefolded field names

    @classmethod
    def of(cls, secrets: Iterable[str], sensitive_fields: Iterable[str] = ()) -> Redactor:
        return cls(spellings(secrets), frozenset(name.casefold() for name in sensitive_fields))

    def __bool__(self) -> bool:
        """False when nothing would ever be redacted."""
        return bool(self.secrets or self.sensitive)

    def text(self, text: str) -> str:
        # The shortest spelling is last: a shorter text (most keys and many values) holds none.
        return mask(text, self.secrets) if self.secrets and len(text) >= len(self.secrets[-1]) else text

    def mapping(self, mapping: Mapping[Any, Any], leaf: Leaf = plain, depth: int = 0) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in mapping.items():
            name = str(key)
            sensitive = bool(self.sensitive) and name.casefold() in self.sensitive
            out[self.text(name)] = REDACTED if sensitive else self.value(value, leaf, depth)
        return out

    def value(self, value: Any, leaf: Leaf = plain, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, int):  # bool is an int
            return value
        if isinstance(value, dict | list | tuple | set | frozenset | Mapping):  # builtins first: faster
            if depth >= MAX_DEPTH:
                return TOO_DEEP
            if isinstance(value, Mapping):
                return self.mapping(value, leaf, depth + 1)
            return [self.value(item, leaf, depth + 1) for item in value]
        converted = leaf(value)
        return self.text(converted) if isinstance(converted, str) else converted
