"""A call's telephony side: keypad entries, the silence supervisor, goodbyes, hang-ups and transfers.

Rules:
- It is built with the call (after ``start``) and given its facts then: the line, the stream's ``start``
  (the sids), the history (for the notes a failed transfer leaves the model), the journal's ``note``, and
  the stages it drives directly: ``Lines`` (to say a line), ``TurnTaking`` (a keypad entry is a turn;
  a goodbye drops a speculation) and the call's ``CallActions``. It never calls the Call: what only the
  Call may do follows from its news (``post``): ``Tick`` (the Call answers with ``tick``, telling it
  whether the bot is busy) and ``LineReleased`` (the Call closes the socket). Of Twilio it asks only
  through ``CallControl``.
- ``ending`` says why the call is ending ("end_call", "no_answer", "max_duration", "transfer", or
  "socket_error" when the socket failed first); once set, the call's phase is ``ENDING``
  (``bot.core.call_state``): it starts no new turn, takes no key and nothing barges in.
- A goodbye is said, the bot waits until its mark is echoed (the caller heard it), hangs up through
  REST, then the socket is closed. A failed hang-up still closes the socket, which ends a
  ``<Connect><Stream>`` call. Talking over the goodbye does not cut it. The longest call's goodbye cuts
  in: ``tick`` returns it, and the Call stops the bot before handing it to ``end``.
- A transfer line is said inside the turn, so a barge-in cancels it: the transfer is then not made
  and the model is told to ask again. Once the line was heard the redirect is sent; if Twilio refuses
  it the caller hears ``transfer_failed_text`` and the call goes on.
- The supervisor posts a ``Tick`` every ``SUPERVISOR_TICK_S``; at each, ``tick`` ends keypad entries on
  timeout, counts silence (``SilenceWatch``) and reprompts, gives up, or ends the longest call.
- Keys (``on_key``) are handed over by the Call only while the line takes them and the call's state
  allows them (``bot.core.call_state``); the first key of an entry stops the bot like speech does
  (``entering`` is False before it), which the Call does before handing the key over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from bot.call.actions import TRANSFER_FAILED, TRANSFER_INTERRUPTED, CallActions, EndCall, Transfer
from bot.call.events import LineReleased, Post, Tick
from bot.call.lines import Lines
from bot.call.turn_taking import TurnTaking
from bot.call.turns import Turn
from bot.call.utterance import Utterance
from bot.core.history import Conversation
from bot.core.keypad import DtmfCollector
from bot.core.silence import Due, SilenceWatch
from bot.core.twilio_messages import Start
from bot.flows.line import LineConfig
from bot.providers.twilio_rest import CallControl, transfer_twiml
from media.errors import ProviderError

log = structlog.get_logger("bot.call.call")
SUPERVISOR_TICK_S = 0.2  # how often silence, call length and keypad timeouts are checked
SOCKET_ERROR = "socket_error"  # ``ending`` of a call whose socket failed (see ``MediaSocket``)


class Note(Protocol):
    def __call__(self, event: str, /, *, warning: bool = False, **fields: Any) -> None: ...  # log and record


class Telephony:
    def __init__(
        self,
        post: Post,
        line: LineConfig,
        start: Start,
        control: CallControl | None,
        clock: Callable[[], float],
        *,
        history: Conversation,
        note: Note,
        lines: Lines,
        taking: TurnTaking,
        actions: CallActions,
    ) -> None:
        self._post = post
        self._lines = lines
        self._taking = taking
        self._line = line
        self._start = start
        self._history = history
        self._note = note
        self._control = control
        self._clock = clock
        self.actions = actions
        self.watch = SilenceWatch(
            reprompt_after_s=line.timeouts.silence_reprompt_s,
            max_reprompts=line.timeouts.max_reprompts,
            max_call_s=line.timeouts.max_call_s,
            started_at=clock(),
        )
        self.keys = DtmfCollector(finish_key=line.dtmf.finish_key, timeout_s=line.dtmf.timeout_s)
        self.ending: str | None = None
        self.transferred_to: str | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ending_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._tick_on(), name="call-supervisor")

    async def stop(self) -> None:
        current = asyncio.current_task()
        for task in (self._supervisor, self._ending_task):
            if task is not None and task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # ---- keypad --------------------------------------------------------------------------------

    @property
    def entering(self) -> bool:
        """A keypad entry is under way (a key came, the entry is not finished)."""
        return self.keys.collecting

    async def on_key(self, digit: str, now: float) -> None:
        """A ``dtmf`` key that came at ``now``."""
        self.watch.caller_active(now)
        entry = self.keys.push(digit, now)
        if entry:
            await self._on_entry(entry)

    async def _on_entry(self, digits: str) -> None:
        self._note("dtmf_entry", digits=len(digits))
        await self._taking.typed(self._line.dtmf.message.format(digits=digits))

    # ---- silence and call length ---------------------------------------------------------------

    async def _tick_on(self) -> None:
        while True:
            await asyncio.sleep(SUPERVISOR_TICK_S)
            self._post(Tick())

    async def tick(self, now: float, *, busy: bool) -> EndCall | None:
        """A ``Tick`` at ``now``; ``busy``: the bot speaks or thinks, or the caller is mid-utterance.
        Returns the longest call's goodbye when it is due, for the Call to cut in with (see the rules)."""
        entry = self.keys.poll(now)
        if entry and self.ending is None:
            await self._on_entry(entry)
        if self.ending is not None:
            return None
        if busy or self.keys.collecting:
            self.watch.bot_active(now)
        due = self.watch.due(now)
        timeouts = self._line.timeouts
        if due is Due.REPROMPT:
            self._note("reprompt", count=self.watch.reprompts)
            self._lines.say(timeouts.reprompt_text)
        elif due is Due.GIVE_UP:
            self.end(EndCall(timeouts.no_answer_goodbye, "no_answer"))
        elif due is Due.MAX_DURATION:
            return EndCall(timeouts.max_call_goodbye, "max_duration")
        return None

    # ---- goodbyes and transfers ----------------------------------------------------------------

    def socket_failed(self, reason: str, close_code: int | None) -> None:
        """The media socket failed (not a hang-up): noted; the call ends as ``socket_error`` unless it
        was already ending for a reason of its own."""
        self._note("socket_error", warning=True, reason=reason, close_code=close_code)
        if self.ending is None:
            self.ending = SOCKET_ERROR
            self.actions.ending = True

    def end(self, end: EndCall) -> None:
        """Say the goodbye (after what is playing), then hang up."""
        if self.ending is not None:
            return
        self.ending = end.reason
        self.actions.ending = True
        self._ending_task = asyncio.create_task(self._say_goodbye_and_hang_up(end), name="ending")

    async def _say_goodbye_and_hang_up(self, end: EndCall) -> None:
        await self._taking.drop_speculation()
        heard = await _until_heard(self._lines.say(end.goodbye))
        self._note("hanging_up", reason=end.reason, goodbye_heard=heard)
        start = self._start
        if self._control is not None and start.call_sid:
            try:
                await self._control.hang_up(start.account_sid, start.call_sid)
            except ProviderError as exc:  # closing the socket still ends a <Connect><Stream> call
                self._note("hang_up_failed", warning=True, provider=exc.provider, kind=exc.kind)
        self._post(LineReleased("hang_up"))

    async def transfer(self, transfer: Transfer, turn: Turn) -> None:
        """Inside the turn: say the transfer line; once heard, redirect the call (in the background)."""
        config = transfer.config
        line = self._lines.say(config.say, turn)
        try:
            await _until_heard(line)
        except asyncio.CancelledError:  # the caller spoke over the transfer line: ask, do not transfer
            self.actions.transfer_abandoned()
            self._history.add_note(TRANSFER_INTERRUPTED)
            self._note("transfer_interrupted", target=config.name)
            raise
        self.ending = "transfer"  # from here on nothing interrupts: the REST request is on its way
        self._ending_task = asyncio.create_task(self._redirect(transfer), name="transferring")

    async def _redirect(self, transfer: Transfer) -> None:
        config = transfer.config
        try:
            start = self._start
            if self._control is None or not start.call_sid:
                raise ProviderError("twilio", "unavailable", "no REST client")
            await self._control.redirect(start.account_sid, start.call_sid, transfer_twiml(config.number))
        except ProviderError as exc:
            self._note(
                "transfer_failed", warning=True, provider=exc.provider, kind=exc.kind, target=config.name
            )
            self.ending = None
            self.actions.transfer_abandoned()
            self._history.add_note(TRANSFER_FAILED)
            self._lines.say(self._line.transfer_failed_text)
            return
        self.actions.transferred = True
        self.transferred_to = config.number
        self._note("transferred", target=config.name)
        self._post(LineReleased("transfer"))


async def _until_heard(line: Utterance) -> bool:
    """Until the caller heard all of a goodbye or transfer line; False on timeout or TTS error."""
    return await line.until_heard(10.0 + 0.1 * len(line.text))  # generous: ~15 characters a second
