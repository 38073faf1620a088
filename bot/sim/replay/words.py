"""Words of a sentence and the edit distance between two word lists: how far apart two texts are.

Normalisation: lower case; commas, dots and dashes inside numbers dropped ("1,234" and "1-2-3-4" are
"1234"); other punctuation removed. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NUMBER_JOINERS = re.compile(r"(?<=\d)[,.\-\s](?=\d)")
_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def words(text: str) -> list[str]:
    text = _NUMBER_JOINERS.sub("", text.lower())
    return _NOT_WORD.sub(" ", text).split()


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def word_distance(old: str, new: str) -> float:
    """Word-level edit distance over the longer text's word count: 0.0 same words, 1.0 nothing shared."""
    a, b = words(old), words(new)
    longest = max(len(a), len(b))
    return edit_distance(a, b) / longest if longest else 0.0
