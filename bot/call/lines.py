"""``Lines``: how the bot says a fixed line of its flow (greeting, reprompt, goodbye, transfer line, filler,
progress line, apology), for whichever part of the call needs one said.

Rules:
- A line gets a response id of the call's history, becomes an ``Utterance`` (``bot.call.utterance``) held
  in ``live`` until it is heard, cut or failed, and goes to the Speaker with its clip when one is ready
  (``bot.providers.clips``: fixed lines are synthesized ahead, so they play at once).
- ``in_history``: goodbyes, reprompts and transfer lines enter the history as the assistant's (the model
  knows it said them); fillers, progress lines and the apology do not, and are never apologised for.
- Said inside a turn, a line's response id joins the turn's: a barge-in that clears it cuts that turn.
- The parts that say lines (the Call, the waiting and telephony sides) are handed this object: saying a
  line is a call going down to the Speaker, never a call back into the Call.
"""

from __future__ import annotations

from bot.call.speaker import Speaker
from bot.call.turns import Turn
from bot.call.utterance import LiveLines, Utterance
from bot.core.history import Conversation
from bot.providers.clips import ClipCache


class Lines:
    def __init__(self, speaker: Speaker, history: Conversation, clips: ClipCache, *, apology: str) -> None:
        self._speaker = speaker
        self._apology = apology
        self._history = history
        self._clips = clips
        self.live = LiveLines()  # said and not yet heard, cut or failed

    def say(
        self, text: str, turn: Turn | None = None, *, in_history: bool = True, interruptible: bool = True
    ) -> Utterance:
        rid = self._history.new_response_id()
        line = self.live.add(Utterance(rid, text, interruptible=interruptible, in_history=in_history))
        if turn is not None:
            turn.response_ids.add(rid)
        if in_history:
            self._history.add_assistant(text, rid)
        self._speaker.say(text, rid, audio=self._clips.get(text))
        return line

    def apologise(self, turn: Turn | None) -> Utterance:
        """The flow's apology (a provider failed, or the turn ran out of time): never in history."""
        return self.say(self._apology, turn, in_history=False)
