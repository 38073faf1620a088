"""``bot.core.call_state``: the phase a call's facts put it in, and what each phase allows.

The rules the Call and its telephony side followed before the table (barge-in only while the bot thinks
or speaks and the call is not ending; no turn and no key once it is ending; silence only while nobody is
busy) are checked against the table for every combination of facts.
"""

from __future__ import annotations

import itertools

import pytest

from bot.core.call_state import ALLOWS, Act, Phase, allows, phase_of

FACTS = list(itertools.product([False, True], repeat=4))  # ending, speaking, thinking, hearing


@pytest.mark.parametrize(("ending", "speaking", "thinking", "hearing"), FACTS)
def test_the_table_keeps_the_call_s_rules_for_every_combination_of_facts(
    ending: bool, speaking: bool, thinking: bool, hearing: bool
) -> None:
    phase = phase_of(ending=ending, speaking=speaking, thinking=thinking, hearing=hearing)

    assert allows(phase, Act.BARGE_IN) == (not ending and (speaking or thinking))
    assert allows(phase, Act.TURN) == (not ending)
    assert allows(phase, Act.KEYS) == (not ending)
    assert allows(phase, Act.SILENCE_COUNTS) == (not (ending or speaking or thinking or hearing))


@pytest.mark.parametrize(
    ("facts", "phase"),
    [
        ({}, Phase.LISTENING),
        ({"hearing": True}, Phase.HEARING),
        ({"thinking": True, "hearing": True}, Phase.THINKING),
        ({"speaking": True, "thinking": True, "hearing": True}, Phase.SPEAKING),
        ({"ending": True, "speaking": True, "thinking": True, "hearing": True}, Phase.ENDING),
    ],
)
def test_the_phases_take_precedence_in_order(facts: dict[str, bool], phase: Phase) -> None:
    assert (
        phase_of(**{"ending": False, "speaking": False, "thinking": False, "hearing": False, **facts})
        is phase
    )


def test_every_phase_has_a_row_and_an_ending_call_allows_nothing() -> None:
    assert set(ALLOWS) == set(Phase)
    assert ALLOWS[Phase.ENDING] == frozenset()
