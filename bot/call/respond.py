"""``Responder``: one turn's work, from the caller's audio to the bot's answer on its way out.

Rules:
- Transcribe the turn (keypad turns: the words cut short by the first key, then the keys as the model
  reads them), wait until the turn is confirmed (``speculation: llm`` streams the model first and holds
  the answer instead), follow the turn still running before it (``Turn.after``), then stream the Agent's
  answer: each phrase to the Speaker at once, each filler to the waiting side.
- A speculative turn never ends on its own: it ends confirmed, or is cancelled unconfirmed and then undoes
  its own history (``Agent.rollback``), as if it never happened.
- The model's ``end_call`` or ``transfer_call`` is performed once the answer is out (``Telephony``).
- A provider error or the turn budget (``turn_budget_s``) gets the apology once the turn is real; what the
  caller heard of the answer stays in history (``Agent.settle``). Nothing else is caught: a cancellation
  (barge-in, hang-up) belongs to the Call.
- It is handed the stages it drives (all below the Call) and reports nothing: the Call owns the turn's
  task and logs the turn when the task ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing

from bot.call.actions import CallActions, EndCall, Transfer
from bot.call.agent import Agent, Filler
from bot.call.lines import Lines
from bot.call.speaker import Speaker
from bot.call.telephony import Note, Telephony
from bot.call.turns import Turn
from bot.call.waiting import CallWaiting
from bot.core.history import Conversation
from bot.flows.line import LineConfig
from bot.providers.stt.protocol import SpeechToText
from media.errors import ProviderError


class Responder:
    def __init__(
        self,
        line: LineConfig,
        stt: SpeechToText,
        history: Conversation,
        agent: Agent,
        speaker: Speaker,
        lines: Lines,
        *,
        waiting: CallWaiting,
        actions: CallActions,
        phone: Telephony,
        clock: Callable[[], float],
        note: Note,
    ) -> None:
        self._line = line
        self._stt = stt
        self._history = history
        self._agent = agent
        self._speaker = speaker
        self._lines = lines
        self._waiting = waiting
        self._actions = actions
        self._phone = phone
        self._clock = clock
        self._note = note

    async def run(self, turn: Turn) -> None:
        turn.history_mark = len(self._history.messages)
        try:
            await self._answer(turn)
        except asyncio.CancelledError:
            if not turn.confirmed.is_set():  # a dropped speculation: it never happened
                self._agent.rollback(turn.history_mark)
            raise

    async def _answer(self, turn: Turn) -> None:
        try:
            if turn.typed is not None:
                # Words cut short by the first key come first, so nothing the caller said is lost.
                said = await self._stt.transcribe(turn.audio, 8000) if turn.audio else ""
                turn.transcript = f"{said} {turn.typed}".strip()
            else:
                turn.transcript = await self._stt.transcribe(turn.audio, 8000)
            turn.stt_done_at = self._clock()
            if self._line.speculation != "llm":
                await turn.confirmed.wait()
            if turn.after is not None:
                await asyncio.wait({turn.after})
            if not turn.transcript:
                return
            self._history.add_user(turn.transcript)
            await self._speak_answer(turn)
            await turn.confirmed.wait()  # an unconfirmed turn never ends on its own: dropping it undoes it
            action = self._actions.take()
            if isinstance(action, EndCall):
                self._phone.end(action)
            elif isinstance(action, Transfer):
                await self._phone.transfer(action, turn)
        except ProviderError as exc:
            await turn.confirmed.wait()  # a failed speculation apologises only if the turn is real
            turn.error = f"{exc.provider}:{exc.kind}"
            self._note("provider_error", warning=True, provider=exc.provider, kind=exc.kind, turn=turn.number)
            self._agent.settle(turn.said_text)
            self._lines.apologise(turn)
        finally:
            self._waiting.company(turn).stop()

    async def _speak_answer(self, turn: Turn) -> None:
        company = self._waiting.company(turn)
        answer = self._agent.answer(turn.timings, turn.confirmed.wait, company.filler)
        try:
            async with asyncio.timeout(self._line.turn_budget_s), aclosing(answer):
                async for out in answer:
                    await turn.confirmed.wait()  # a speculative answer is held until confirmed
                    if isinstance(out, Filler):
                        self._waiting.filler(turn, out.text)
                        continue
                    company.answer()
                    turn.add_phrase(out.response_id, out.text, self._clock())
                    self._speaker.say(out.text, out.response_id, answer=True)
        except TimeoutError as exc:
            raise ProviderError("llm", "turn_budget") from exc
