"""bot.core.redact: the one redaction rule of logs, recordings and tool results."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot.core.redact import MAX_DEPTH, MIN_LENGTH, REDACTED, TOO_DEEP, Redactor, mask, plain, spellings

SECRET = "sk-live-0123456789"


def test_a_secret_is_masked_wherever_it_is() -> None:
    redactor = Redactor.of([SECRET])
    assert redactor.text(f"key={SECRET}&again={SECRET}") == f"key={REDACTED}&again={REDACTED}"
    assert redactor.text("nothing here") == "nothing here"


def test_side_by_side_occurrences_stay_two_and_overlapping_ones_become_one() -> None:
    assert mask("abcdabcd", ("abcd",)) == REDACTED * 2
    assert mask("abababab", ("abab",)) == REDACTED  # overlapping occurrences of one secret
    assert mask("wxyzabcdefgh12", ("abcdefgh12", "wxyzabcd")) == REDACTED
    assert mask("x-abcd-y-efgh-z", ("abcd", "efgh")) == f"x-{REDACTED}-y-{REDACTED}-z"


def test_a_secret_inside_a_longer_one_is_masked_with_it_in_any_order() -> None:
    for secrets in (["abcd", "abcdefgh-long"], ["abcdefgh-long", "abcd"]):
        assert Redactor.of(secrets).text("<abcdefgh-long> <abcd>") == f"<{REDACTED}> <{REDACTED}>"


def test_short_values_are_not_secrets() -> None:
    assert MIN_LENGTH == 4
    assert spellings(["", "abc", "42"]) == ()
    assert not Redactor.of(["", "abc"])
    assert Redactor.of(["abc"]).text("abc and more abc") == "abc and more abc"


def test_the_json_spelling_of_a_secret_is_masked_too() -> None:
    secret = 'to"k\\en-é-0123'
    assert set(spellings([secret])) == {secret, json.dumps(secret)[1:-1]}
    text = json.dumps({"raw": secret, "again": f"x{secret}x"})
    assert json.loads(Redactor.of([secret]).text(text)) == {"raw": REDACTED, "again": f"x{REDACTED}x"}
    assert Redactor.of([secret]).text(secret) == REDACTED


def test_spellings_are_longest_first_and_without_duplicates() -> None:
    assert spellings(["abcd", "abcdefgh", "abcd"]) == ("abcdefgh", "abcd")


def test_value_walks_keys_values_lists_tuples_and_sets() -> None:
    redactor = Redactor.of([SECRET])
    value = {SECRET: [SECRET, (1, f"a{SECRET}")], "n": None, "b": True, "i": 3, "f": 1.5, "s": {SECRET}}
    assert redactor.value(value) == {
        REDACTED: [REDACTED, [1, f"a{REDACTED}"]],
        "n": None,
        "b": True,
        "i": 3,
        "f": 1.5,
        "s": [REDACTED],
    }
    assert redactor.mapping({1: "x"}) == {"1": "x"}  # keys as text


def test_sensitive_fields_are_redacted_whatever_their_value_case_insensitively() -> None:
    redactor = Redactor.of([], sensitive_fields=["Authorization", "card_number"])
    assert redactor
    value = {"authorization": {"deep": 1}, "items": [{"CARD_NUMBER": 4111111111111111, "qty": 1}]}
    assert redactor.value(value) == {
        "authorization": REDACTED,
        "items": [{"CARD_NUMBER": REDACTED, "qty": 1}],
    }


def test_other_objects_go_through_leaf_and_its_text_is_masked() -> None:
    class Holder:
        def __repr__(self) -> str:
            return f"Holder({SECRET})"

    redactor = Redactor.of([SECRET])
    assert redactor.value(Holder()) == f"Holder({REDACTED})"
    assert plain(2.5) == 2.5 and plain(b"x") == "b'x'"
    when = datetime(2026, 12, 3, tzinfo=UTC)
    assert redactor.value({"at": when}, leaf=lambda v: v.isoformat()) == {"at": "2026-12-03T00:00:00+00:00"}
    assert redactor.value(7.5, leaf=lambda v: None) is None  # a leaf's non-text result is kept


def test_a_self_referencing_structure_ends_at_max_depth() -> None:
    loop: list[Any] = []
    loop.append(loop)
    out = Redactor.of([SECRET]).value(loop)
    for _ in range(MAX_DEPTH):
        (out,) = out
    assert out == TOO_DEEP


def test_without_secrets_text_is_unchanged() -> None:
    redactor = Redactor()
    assert not redactor and redactor.text(SECRET) == SECRET


# ---- properties ----------------------------------------------------------------------------------

# Secrets and text from an alphabet without the marker's characters, so a secret cannot be spelled by
# "[redacted]" itself (that would be the marker showing, not a secret).
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"
secret_text = st.text(alphabet=ALPHABET, min_size=MIN_LENGTH, max_size=12)
plain_text = st.text(alphabet=ALPHABET + " ", max_size=30)


@given(
    secrets=st.lists(secret_text, min_size=1, max_size=4), parts=st.lists(plain_text, min_size=1, max_size=5)
)
def test_no_secret_survives(secrets: list[str], parts: list[str]) -> None:
    text = "".join(part + secrets[i % len(secrets)] for i, part in enumerate(parts))
    out = Redactor.of(secrets).text(text)
    assert not any(secret in out for secret in secrets)


@given(secrets=st.lists(secret_text, min_size=1, max_size=4), text=plain_text)
def test_every_character_outside_a_secret_is_kept_in_order(secrets: list[str], text: str) -> None:
    # The output is the text with each run of secret characters replaced by one marker.
    covered = [False] * len(text)
    for secret in secrets:
        for start in range(len(text) - len(secret) + 1):
            if text.startswith(secret, start):
                covered[start : start + len(secret)] = [True] * len(secret)
    out = Redactor.of(secrets).text(text)
    assert out.replace(REDACTED, "") == "".join(
        c for c, hidden in zip(text, covered, strict=True) if not hidden
    )
    assert (REDACTED in out) == any(covered)


@given(text=st.text(max_size=40), secret=st.text(min_size=MIN_LENGTH, max_size=12))
def test_text_without_a_secret_is_unchanged_and_with_one_is_marked(text: str, secret: str) -> None:
    redactor = Redactor.of([secret])
    if not any(spelling in text for spelling in spellings([secret])):
        assert redactor.text(text) == text
    assert REDACTED in redactor.text(text + secret + text)
