"""The built-in telephony tools (``end_call``, ``transfer_call``) and what the call was asked to do.

Rules:
- The tools only record a request (``CallActions.pending``) and return a ``FinalResult``: the
  model is not asked to go on, and the Call performs the request once the answer's text is out.
- One transfer per call: while a transfer is requested or done, another one is refused with an
  error result the model reads (and then tells the caller). A transfer whose line the caller
  interrupted, or whose REST request failed, is forgotten (``transfer_abandoned``), so the caller
  may ask again.
- Once the call is ending (a goodbye is being said) every further request is refused.
- No I/O here: the Call says the lines, waits for their marks and talks to Twilio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.flows.line import EndCallConfig, LineConfig, TransferConfig
from bot.tools.registry import FinalResult, Tool

_NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}

# What the model reads in history when a transfer did not happen.
TRANSFER_INTERRUPTED = (
    "The transfer was NOT made: the caller spoke before the transfer announcement finished. "
    "Ask whether they still want to be transferred before calling the transfer tool again."
)
TRANSFER_FAILED = (
    "The transfer failed (the phone system did not accept it). Apologise and offer to take a message."
)


@dataclass(frozen=True)
class EndCall:
    goodbye: str
    reason: str  # end_call, no_answer, max_duration


@dataclass(frozen=True)
class Transfer:
    config: TransferConfig


Action = EndCall | Transfer


class CallActions:
    def __init__(self) -> None:
        self.pending: Action | None = None
        self.ending = False
        self.transferring = False  # a transfer was requested and not abandoned
        self.transferred = False  # Twilio accepted the transfer

    def tools(self, line: LineConfig) -> tuple[Tool, ...]:
        tools = [self._end_call_tool(line.end_call)] if line.end_call is not None else []
        return (*tools, *(self._transfer_tool(t) for t in line.transfers))

    def take(self) -> Action | None:
        action, self.pending = self.pending, None
        return action

    def drop_pending(self) -> None:
        """The answer that asked for an action was cut (barge-in, error): nothing is done."""
        if isinstance(self.pending, Transfer):
            self.transferring = False
        self.pending = None

    def transfer_abandoned(self) -> None:
        self.transferring = False

    def _end_call_tool(self, config: EndCallConfig) -> Tool:
        async def end_call() -> Any:
            if self.ending or self.pending is not None:
                return {"error": "the call is already ending or being transferred"}
            self.pending = EndCall(config.goodbye, "end_call")
            return FinalResult({"status": "ending the call: the goodbye is being said"})

        return Tool(config.name, config.description, _NO_ARGUMENTS, end_call, timeout_s=1.0)

    def _transfer_tool(self, config: TransferConfig) -> Tool:
        async def transfer_call() -> Any:
            if self.ending:
                return {"error": "the call is ending; it cannot be transferred"}
            if self.transferring or self.transferred or self.pending is not None:
                return {"error": "the call is already being transferred; do not transfer it again"}
            self.transferring = True
            self.pending = Transfer(config)
            return FinalResult({"status": f"transferring the caller to {config.number}"})

        return Tool(config.name, config.description, _NO_ARGUMENTS, transfer_call, timeout_s=1.0)
