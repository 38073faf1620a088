"""``Utterance``: one fixed line the bot says (greeting, reprompt, goodbye, transfer line, filler, apology),
from ``Lines.say`` (``bot.call.lines``) until the caller heard it, it was cut, or it could not be said.

Rules:
- It carries what the call used to keep in side tables by response id: whether a barge-in may cut it
  (``interruptible``: a greeting that is not, until it has been heard), whether it is in the history
  (``in_history``: fillers, progress lines and the apology are not, and are never apologised for), and
  whether the caller heard all of it (``until_heard``).
- It is settled once: ``heard`` (its last phrase's mark came back played), ``failed`` (no audio could be
  made) or ``cut`` (a barge-in cleared it). A failure is news to whoever waits for the line to be heard
  (a goodbye, a transfer line): ``failed`` says so, and that waiter acts anyway instead of the call
  apologising.
- ``LiveLines`` holds the call's live utterances by response id, so the Speaker's events (which name
  response ids) find theirs; a settled one leaves it.
- Model: LiveKit's ``SpeechHandle`` (``livekit-agents/livekit/agents/voice/speech_handle.py``): an id,
  whether it may be interrupted, and a future for its end in one object. The model's streamed answers
  are not utterances yet: the Agent and the Speaker still speak of them by response id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field


def _future() -> asyncio.Future[bool]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class Utterance:
    response_id: int
    text: str
    interruptible: bool = True
    in_history: bool = True
    _heard: asyncio.Future[bool] = field(default_factory=_future, repr=False)
    _waiters: int = 0

    def heard(self) -> None:
        """Every phrase of it was played."""
        if not self._heard.done():
            self._heard.set_result(True)

    def failed(self) -> bool:
        """No audio could be made for it: True if someone waits for it to be heard (they are told)."""
        if self._waiters == 0 or self._heard.done():
            return False
        self._heard.set_result(False)
        return True

    async def until_heard(self, timeout_s: float) -> bool:
        """True once the caller heard all of it; False if it failed or ``timeout_s`` passed first."""
        self._waiters += 1
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(self._heard)  # a cancelled waiter leaves the line's fate alone
        except TimeoutError:
            return False
        finally:
            self._waiters -= 1


class LiveLines:
    """The call's live utterances, by response id."""

    def __init__(self) -> None:
        self._live: dict[int, Utterance] = {}

    def add(self, utterance: Utterance) -> Utterance:
        self._live[utterance.response_id] = utterance
        return utterance

    def heard(self, response_id: int) -> None:
        """All of ``response_id`` was played: its utterance (if it is one) is settled."""
        utterance = self._live.pop(response_id, None)
        if utterance is not None:
            utterance.heard()

    def failed(self, response_id: int) -> Utterance | None:
        """Its audio could not be made: the utterance it was (now settled), or None for an answer."""
        return self._live.pop(response_id, None)

    def cut(self, response_ids: Iterable[int]) -> None:
        """A barge-in cleared these: their utterances will never be heard."""
        for response_id in response_ids:
            self._live.pop(response_id, None)

    def locked(self) -> bool:
        """A line a barge-in may not cut (the greeting) is still to be heard."""
        return any(not u.interruptible for u in self._live.values())
