"""The Agent: one caller turn = one async generator of things to say.

Rules (the streaming guide's behaviour):
- Every model request streams (``ChatModel.stream``); each content chunk goes into the
  ``PhraseBuffer`` at once and every complete phrase is yielded at once; the rest is flushed when
  the response ends.
- Tool calls are collected while streaming (``ToolCallAssembler``). When a response has tool calls,
  all of them run in parallel (up to ``MAX_CALLS_PER_RESPONSE``, ``bot.tools.registry``); if they
  are not done after ``filler_delay_s`` a ``Filler`` is yielded (never when they finish first).
  History then gets ONE assistant message carrying every tool call (arguments as the streamed
  strings) followed by one ``tool`` message per call id, and the follow-up is streamed the same way,
  up to ``max_tool_rounds`` rounds (``on_follow_up`` tells the turn's companion, which keeps the caller
  company while it is slow). A ``FinalResult`` (hang-up, transfer) ends the answer after its round is in
  history: the call acts instead of the model.
- A response's assistant message enters history only when it has been streamed whole; until then its
  text is the Agent's own (``unsettled``, read-only outside). What a barge-in or an error cut short is
  settled through ``settle(heard)`` with what the caller actually heard, and a dropped speculation's
  history through ``rollback``: nobody else edits the Agent's state.
- Provider errors propagate (``ProviderError``); the Responder (``bot.call.respond``) turns them into
  an apology.
- ``on_text_end(response_id)`` is called once a response has streamed whole (its last phrase already
  yielded), before its tools run: the speech of that response can be finished (one TTS stream per
  response) while the tools work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from bot.core.history import Conversation
from bot.core.tool_calls import ToolCall, ToolCallAssembler
from bot.flows.line import LineConfig
from bot.providers.llm.protocol import ChatModel
from bot.tools.registry import ToolRegistry, ToolResult
from media.phrases import PhraseBuffer


@dataclass(frozen=True)
class Phrase:
    text: str
    response_id: int


@dataclass(frozen=True)
class Filler:
    text: str


@dataclass
class TurnTimings:
    """Monotonic timestamps of one turn; the Call logs them as durations."""

    llm_requests: list[float] = field(default_factory=list)
    first_tokens: list[float] = field(default_factory=list)
    tool_calls: list[dict[str, object]] = field(default_factory=list)
    filler: bool = False
    # Each model request and what it streamed (text, tool calls, their results): for recordings.
    rounds: list[dict[str, object]] = field(default_factory=list)


class Agent:
    def __init__(
        self,
        llm: ChatModel,
        tools: ToolRegistry,
        line: LineConfig,
        conversation: Conversation,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._llm = llm
        self.on_text_end: Callable[[int], None] | None = None  # see the rules
        self._tools = tools
        self._line = line
        self._conversation = conversation
        self._clock = clock
        # Text streamed for responses not yet in history, by response id (``settle`` writes them).
        self.unsettled: dict[int, str] = {}

    def settle(self, heard: Callable[[int], str], cut: Iterable[int] = ()) -> dict[int, str]:
        """The answer was cut (barge-in, error): every unsettled response, and each ``cut`` one, enters
        history as ``heard(response_id)`` (what the caller heard of it); nothing stays unsettled.
        Returns what was written, by response id."""
        written = {rid: heard(rid) for rid in {*cut, *self.unsettled}}
        self.unsettled.clear()
        self._conversation.settle(written)
        return written

    def rollback(self, length: int) -> None:
        """A speculative turn that did not happen: history as it was at ``length`` messages, and nothing
        of its answer unsettled."""
        self._conversation.rollback(length)
        self.unsettled.clear()

    async def answer(
        self,
        timings: TurnTimings,
        gate: Callable[[], Awaitable[object]] | None = None,
        on_follow_up: Callable[[], None] | None = None,
    ) -> AsyncGenerator[Phrase | Filler, None]:
        """Answer the conversation's last user message.

        ``gate`` is awaited before any tool runs: a speculative answer may stream text (held by the
        caller of this generator) but must not act until the turn is confirmed. ``on_follow_up`` is
        called as the model is asked again after tools: the caller now waits for the rest.
        """
        for _round in range(self._line.max_tool_rounds + 1):
            if _round and on_follow_up is not None:
                on_follow_up()
            response_id = self._conversation.new_response_id()
            assembler = ToolCallAssembler()
            phrases = PhraseBuffer(self._line.phrases)
            self.unsettled[response_id] = ""
            requested = self._clock()
            timings.llm_requests.append(requested)
            got_token = got_chunk = False
            tools = self._tools.schemas() if _round < self._line.max_tool_rounds else []
            record: dict[str, object] = {
                "messages": len(self._conversation.messages),
                "tools_offered": [t["function"]["name"] for t in tools],
            }
            timings.rounds.append(record)
            async for chunk in self._llm.stream(self._conversation.messages, tools, self._line.chat):
                if not got_chunk:  # text or a tool call: what a replay waits before serving this answer
                    record["first_chunk_ms"] = round((self._clock() - requested) * 1000)
                    got_chunk = True
                text = assembler.feed(chunk)
                if not text:
                    continue
                if not got_token:
                    timings.first_tokens.append(self._clock())
                    got_token = True
                self.unsettled[response_id] += text
                for phrase in phrases.push(text):
                    yield Phrase(phrase, response_id)
            for phrase in phrases.flush():
                yield Phrase(phrase, response_id)
            self._text_end(response_id)
            # The text stays unsettled until its message is in history: if tools are cut short,
            # ``settle`` writes what the caller heard of it.
            spoken = self.unsettled[response_id].strip()
            calls = assembler.calls()
            record["stream_ms"] = round((self._clock() - requested) * 1000)
            record["text"] = spoken
            record["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
            if calls and not tools:  # tools were not offered (last round): their calls are not run
                if not spoken:
                    del self.unsettled[response_id]
                    break
                calls = []
            if not calls:
                self._conversation.add_assistant(spoken, response_id)
                del self.unsettled[response_id]
                return
            if gate is not None:
                await gate()
            task = asyncio.create_task(self._tools.run_all(calls), name="tools")
            try:
                done, _ = await asyncio.wait({task}, timeout=self._line.filler_delay_s)
                if not done:
                    timings.filler = True
                    yield Filler(self._tools.filler_for(calls) or self._line.filler_text)
                results = await task
            finally:
                if not task.done():  # cancelled (barge-in, hang-up): stop the tools too
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            timings.tool_calls.extend(_tool_figures(results))
            record["tool_results"] = [r.content for r in results]
            self._conversation.add_tool_round(spoken, calls, [r.content for r in results], response_id)
            del self.unsettled[response_id]
            if any(r.final for r in results):
                return
        # Out of tool rounds without a spoken answer: say something rather than nothing.
        response_id = self._conversation.new_response_id()
        yield Phrase("Sorry, I couldn't finish looking that up.", response_id)
        self._text_end(response_id)

    def _text_end(self, response_id: int) -> None:
        if self.on_text_end is not None:
            self.on_text_end(response_id)


def _tool_figures(results: list[ToolResult]) -> list[dict[str, object]]:
    return [
        {"name": r.call.name, "ok": r.ok, "ms": round(r.duration_s * 1000), "args": _short(r.call)}
        for r in results
    ]


def _short(call: ToolCall) -> str:
    text = call.arguments if call.parsed is None else json.dumps(call.parsed, separators=(",", ":"))
    return text[:80]
