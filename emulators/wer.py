"""Word error rate of a transcript against what the simulated caller actually said.

Normalisation: lower case; commas, dots and dashes inside numbers dropped ("1,234" and "1-2-3-4" are
"1234"); other punctuation removed. WER = word-level edit distance / number of reference words.
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


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER over pairs of (what was said, what was heard)."""
    errors = sum(edit_distance(words(r), words(h)) for r, h in zip(references, hypotheses, strict=True))
    total = sum(len(words(r)) for r in references)
    return errors / total if total else 0.0
