"""A SCRIPTED store conversation for the OpenAI emulator: the demo's and the tests' "model".

It is not a language model: it picks a reply from keywords of the caller's last sentence (opening
hours -> ``check_hours``, an order number, spoken or typed on the keypad -> ``lookup_order``, both ->
two parallel calls; "goodbye" -> ``end_call`` and "a person" -> ``transfer_call`` when the line offers
them), and words its follow-up from the tool results the bot sent back. One reply depends on the system
prompt: its offer of help names the business the prompt names ("You are the phone assistant of <name>,"),
so a replay after a prompt edit has an answer that changed. It still goes through the
real ``openai`` SDK and the real streaming format, so the bot's code path is the production one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from emulators.latency import Delay
from emulators.openai_script import ChatRequest, Reply, ScriptedToolCall

PERSON_WORDS = ("person", "someone", "human", "transfer", "front desk")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass
class StoreScript:
    """Callable responder; latencies (seconds or ``emulators.latency`` distributions) are what the
    emulated model takes; a follow-up after tools may take its own (``follow_up_first_token_delay_s``)."""

    first_token_delay_s: Delay = 0.3
    chunk_delay_s: Delay = 0.02
    follow_up_first_token_delay_s: Delay | None = None  # None: first_token_delay_s

    def __call__(self, request: ChatRequest) -> Reply:
        if request.is_follow_up:
            reply = self._reply(self._follow_up(request))
            if self.follow_up_first_token_delay_s is not None:
                reply.first_token_delay_s = self.follow_up_first_token_delay_s
            return reply
        text = (request.last_user_text or "").lower()
        calls: list[ScriptedToolCall] = []
        day = next((d for d in DAYS if d in text), None)
        if day is None and "today" in text:
            day = "monday"
        if "hour" in text or "open" in text:
            calls.append(ScriptedToolCall("check_hours", {"day": day or "monday"}))
        order = _order_number(text)
        if ("order" in text or "keypad" in text) and order:
            calls.append(ScriptedToolCall("lookup_order", {"order_id": order}))
        if calls:
            return self._reply("", calls)
        offered = request.tool_names
        if any(word in text for word in PERSON_WORDS) and "transfer_call" in offered:
            return self._reply("", [ScriptedToolCall("transfer_call", {})])
        if "bye" in text or "that's all" in text:
            if "end_call" in offered:
                return self._reply("You're welcome.", [ScriptedToolCall("end_call", {})])
            return self._reply("You're welcome. Thanks for calling, and have a great day!")
        if not text:
            return self._reply("Sorry, I didn't catch that. Could you say it again?")
        business = _business(request)
        owner = f"{business}'s" if business else "our"
        return self._reply(
            f"I can help with {owner} opening hours and the status of your order. "
            "What would you like to know?"
        )

    def _reply(self, text: str, calls: list[ScriptedToolCall] | None = None) -> Reply:
        return Reply(
            text=text,
            tool_calls=calls or [],
            first_token_delay_s=self.first_token_delay_s,
            chunk_delay_s=self.chunk_delay_s,
        )

    def _follow_up(self, request: ChatRequest) -> str:
        sentences = []
        for content in request.tool_results.values():
            try:
                result = json.loads(content)
            except ValueError:
                result = {"error": content}
            sentences.append(_sentence(result))
        return " ".join(sentences)


def _business(request: ChatRequest) -> str | None:
    """The business the system prompt names, or None."""
    system = next((m for m in request.messages if m.get("role") == "system"), None)
    content = system.get("content") if system else None
    match = re.search(r"phone assistant of ([^,.\n]+)", content) if isinstance(content, str) else None
    return match.group(1).strip() if match else None


def _order_number(text: str) -> str | None:
    """Digits of the first number in ``text``, however a transcriber wrote it: 1234, 1,234, 1-2-3-4."""
    match = re.search(r"\d(?:[\d,\- ]*\d)?", text)
    digits = re.sub(r"\D", "", match.group(0)) if match else ""
    return digits if len(digits) >= 3 else None


def _sentence(result: dict[str, str]) -> str:
    if "transferred" in result.get("error", ""):
        return "You're already being transferred. Please hold."
    if "error" in result:
        return "Sorry, I couldn't look that up just now."
    if "hours" in result:
        hours = result["hours"]
        day = result["day"].capitalize()
        if hours == "closed":
            return f"On {day} we're closed."
        return f"On {day}, we're open from {hours}."
    if result.get("status") == "not found":
        return f"I couldn't find an order with the number {result.get('order_id', '')}."
    if "status" in result:
        return (
            f"Your order {result['order_id']}, the {result.get('item', 'item')}, "
            f"is {result['status']}, and the estimate is {result.get('eta', 'unknown')}."
        )
    return "Here's what I found: " + ", ".join(f"{k} {v}" for k, v in result.items()) + "."
