"""The built-in phone line: what the bot says and does on a call.

Until call-flow files exist this module is the one configuration the server, the demo and the
tests use: a small hardware store's line with two tools that read a local data file. Everything a
support team would tune is a field of ``LineConfig`` with its default here, so the flow-file work can
replace ``default_line()`` without touching the call code.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from bot.flows.store_tools import hours_answer, order_answer
from bot.tools.registry import Tool
from media.phrases import PhraseConfig, PhraseStrategy
from media.tts.google_tts import GoogleVoice
from media.vad import EndpointerConfig

SYSTEM_PROMPT = """You are the phone assistant of {store}, a small hardware store.
You are speaking on the phone: answer in one to three short sentences, plain words, no lists,
no markdown, no emoji. Use the tools for opening hours and order status; never guess them.
If you cannot help, offer to take a message."""


@dataclass(frozen=True)
class LineConfig:
    name: str
    greeting: str
    system_prompt: str
    tools: tuple[Tool, ...] = ()
    greeting_interruptible: bool = True
    voice: GoogleVoice = field(default_factory=GoogleVoice)
    phrases: PhraseConfig = field(
        default_factory=lambda: PhraseConfig(
            strategy=PhraseStrategy.PHRASE, min_phrase_length=20, first_phrase_min_length=0
        )
    )
    endpointing: EndpointerConfig = field(
        default_factory=lambda: EndpointerConfig(end_silence_ms=500, pause_ms=200)
    )
    # Work started in the end-of-turn silence (from endpointing.pause_ms): "stt" transcribes early,
    # "llm" also starts the model (its answer is held, and tools wait, until the turn is confirmed).
    speculation: Literal["off", "stt", "llm"] = "llm"
    barge_in: bool = True  # caller speech (endpointing.min_speech_ms of it) stops the bot
    filler_delay_s: float = 0.3  # tools still running after this long: say the filler
    filler_text: str = "One moment while I look that up."
    silence_filler_s: float = 1.2  # nothing said this long after the caller finished: say this
    silence_filler_text: str = "One moment."
    apology_text: str = "Sorry, I'm having trouble right now. Could you say that again?"
    max_tool_rounds: int = 3
    extra: dict[str, Any] = field(default_factory=dict)

    def clip_texts(self) -> list[str]:
        """What the bot says verbatim, synthesized ahead of time (so it plays even if TTS is down)."""
        texts = [self.greeting, self.apology_text, self.silence_filler_text, self.filler_text]
        return texts + [t.filler for t in self.tools if t.filler]


def load_store_data(path: Path | None = None) -> dict[str, Any]:
    if path is None:
        text = resources.files("bot").joinpath("data/store.json").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def store_tools(data: dict[str, Any], *, lookup_delay_s: float = 0.0) -> tuple[Tool, ...]:
    hours: dict[str, str] = data["hours"]
    orders: dict[str, dict[str, str]] = data["orders"]

    async def check_hours(day: str) -> dict[str, str]:
        return hours_answer(hours, day)

    async def lookup_order(order_id: str) -> dict[str, str]:
        # The store's order system is slow; the delay is what makes the caller hear the filler.
        await asyncio.sleep(lookup_delay_s)
        return order_answer(orders, order_id)

    return (
        Tool(
            name="check_hours",
            description="Opening hours of the store on a given day of the week.",
            parameters={
                "type": "object",
                "properties": {
                    "day": {
                        "type": "string",
                        "enum": list(hours),
                        "description": "Day of the week, lower case.",
                    }
                },
                "required": ["day"],
                "additionalProperties": False,
            },
            handler=check_hours,
            timeout_s=2.0,
        ),
        Tool(
            name="lookup_order",
            description="Status and delivery estimate of a customer's order by its order number.",
            parameters={
                "type": "object",
                "properties": {
                    "order_id": {"type": "string", "description": "The order number, digits only."}
                },
                "required": ["order_id"],
                "additionalProperties": False,
            },
            handler=lookup_order,
            timeout_s=max(4.0, lookup_delay_s + 2.0),
            filler="One moment while I look up your order.",
        ),
    )


def default_line(*, data_path: Path | None = None, lookup_delay_s: float = 0.0) -> LineConfig:
    data = load_store_data(data_path)
    store = data["store"]
    return LineConfig(
        name="store",
        greeting=f"Thanks for calling {store}. How can I help you today?",
        system_prompt=SYSTEM_PROMPT.format(store=store),
        tools=store_tools(data, lookup_delay_s=lookup_delay_s),
    )
