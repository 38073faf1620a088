"""The example store's line (``flows/store.yaml``): its data file, its two tools, and the TTS helpers it uses.

Rules checked here: the tools read ``bot/data/store.json``; ``check_hours`` knows the seven days;
``lookup_order`` finds an order from the digits of whatever the caller said; tool schemas require
their parameters; loopback TTS endpoints are recognised.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.tool_calls import ToolCall
from bot.flows import store_tools
from bot.flows.line import SPECULATION_PAUSE_MS, LineConfig
from bot.providers.tts.google import GoogleVoice, is_loopback_endpoint
from bot.providers.tts.protocol import VoiceOptions
from bot.sim.store_line import store_line
from bot.tools.registry import Tool, ToolRegistry
from media.phrases import PhraseConfig, PhraseStrategy
from media.vad import EndpointerConfig

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def store_file() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("bot").joinpath("data/store.json").read_text(encoding="utf-8")
    )
    return data


STORE = store_file()


def tools_by_name() -> dict[str, Tool]:
    return {t.name: t for t in store_line().tools}


async def check_hours(day: str) -> Any:
    return await tools_by_name()["check_hours"].handler(day=day)


async def lookup_order(order_id: object) -> Any:
    return await tools_by_name()["lookup_order"].handler(order_id=order_id)


def test_the_store_tools_read_the_packaged_file() -> None:
    data = store_tools._store_data()
    assert data == STORE
    assert set(data["hours"]) == set(DAYS)
    assert "1001" in data["orders"]


@pytest.mark.parametrize("day", DAYS)
async def test_check_hours_for_every_day(day: str) -> None:
    assert await check_hours(day) == {"day": day, "hours": STORE["hours"][day]}


async def test_check_hours_tolerates_case_and_spaces() -> None:
    assert await check_hours("  Thursday ") == {"day": "thursday", "hours": STORE["hours"]["thursday"]}


@pytest.mark.parametrize("day", ["someday", "", "tomorrow", "mon"])
async def test_check_hours_for_an_unknown_day(day: str) -> None:
    result = await check_hours(day)
    assert set(result) == {"error"}
    assert "unknown day" in result["error"]


async def test_lookup_order_found() -> None:
    assert await lookup_order("1001") == {"order_id": "1001", **STORE["orders"]["1001"]}


@pytest.mark.parametrize("spoken", ["order #1001", "Order number 10-01", " 1 0 0 1 ", 1001])
async def test_lookup_order_takes_the_digits_of_what_was_said(spoken: object) -> None:
    result = await lookup_order(spoken)
    assert result["order_id"] == "1001"
    assert result["status"] == STORE["orders"]["1001"]["status"]


@pytest.mark.parametrize(("spoken", "digits"), [("9999", "9999"), ("order #42", "42"), ("no number", "")])
async def test_lookup_order_not_found(spoken: str, digits: str) -> None:
    assert await lookup_order(spoken) == {"order_id": digits, "status": "not found"}


@given(
    order_id=st.sampled_from(sorted(STORE["orders"])),
    noise=st.lists(
        st.text(st.characters(blacklist_categories=("Nd", "No")), max_size=4), min_size=5, max_size=5
    ),
)
async def test_lookup_order_ignores_any_non_digit_noise(order_id: str, noise: list[str]) -> None:
    spoken = "".join(n + d for n, d in zip(noise, order_id + " ", strict=False))
    result = await lookup_order(spoken)
    assert result == {"order_id": order_id, **STORE["orders"][order_id]}


async def test_the_tools_work_through_the_registry() -> None:
    registry = ToolRegistry.of(store_line().tools)
    calls = [
        ToolCall(0, "c1", "check_hours", '{"day": "sunday"}', {"day": "sunday"}, None),
        ToolCall(1, "c2", "lookup_order", '{"order_id": "#2040"}', {"order_id": "#2040"}, None),
    ]
    hours, order = await registry.run_all(calls)
    assert json.loads(hours.content) == {"day": "sunday", "hours": STORE["hours"]["sunday"]}
    assert json.loads(order.content)["status"] == STORE["orders"]["2040"]["status"]


def test_tool_schemas_require_their_parameters() -> None:
    schemas = {s["function"]["name"]: s["function"] for s in ToolRegistry.of(store_line().tools).schemas()}
    assert set(schemas) == {"check_hours", "lookup_order"}
    for function in schemas.values():
        parameters = function["parameters"]
        assert function["description"]
        assert parameters["type"] == "object"
        assert parameters["required"]
        assert set(parameters["required"]) <= set(parameters["properties"])
        assert parameters["additionalProperties"] is False
    assert schemas["check_hours"]["parameters"]["required"] == ["day"]
    assert schemas["check_hours"]["parameters"]["properties"]["day"]["enum"] == DAYS
    assert schemas["lookup_order"]["parameters"]["required"] == ["order_id"]


def test_the_slow_order_lookup_has_its_own_filler_and_room_to_finish() -> None:
    tools = tools_by_name()
    assert tools["lookup_order"].filler
    assert tools["check_hours"].filler is None
    slow = {t.name: t for t in store_line(order_delay_s=3.0).tools}["lookup_order"]
    assert slow.timeout_s > 3.0


def test_store_line_is_the_store_flow() -> None:
    line = store_line()
    assert STORE["store"] in line.greeting
    assert STORE["store"] in line.system_prompt
    assert [t.name for t in line.tools] == ["check_hours", "lookup_order"]
    assert line.filler_delay_s > 0
    assert line.max_tool_rounds >= 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.name = "other"  # type: ignore[misc]


def test_each_line_default_is_its_components_own() -> None:
    line = LineConfig(name="x", greeting="Hi.", system_prompt="Be brief.")
    assert line.phrases == PhraseConfig()
    assert line.endpointing == EndpointerConfig(pause_ms=SPECULATION_PAUSE_MS)  # the line speculates
    # What a call runs with when nothing is set (pinned: a changed default shows here first).
    assert dataclasses.astuple(line.phrases) == (PhraseStrategy.PHRASE, 20, 0, 0)
    assert dataclasses.astuple(line.endpointing) == (160, 500, 200, 30000, 3.0, 300, 0.05, 2000, 200)
    store = store_line()  # flows/store.yaml states the same values
    assert (store.phrases, store.endpointing, store.speculation) == (line.phrases, line.endpointing, "llm")


def test_line_config_defaults() -> None:
    line = LineConfig(name="x", greeting="Hi.", system_prompt="Be brief.")
    assert line.tools == ()
    assert line.voice == VoiceOptions() and line.tts_provider == "auto"
    assert line.speculation in ("off", "stt", "llm")


# ---- bot.providers.tts.google helpers used by the line -----------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("127.0.0.1:1", True),
        ("localhost:1", True),
        ("[::1]:1", True),
        ("LOCALHOST:50051", True),
        ("example.com:443", False),
        ("texttospeech.googleapis.com:443", False),
        ("10.0.0.1:50051", False),
        ("localhost.example.com:1", False),
    ],
)
def test_is_loopback_endpoint(endpoint: str, loopback: bool) -> None:
    assert is_loopback_endpoint(endpoint) is loopback


def test_google_voice_defaults_are_telephony_mulaw() -> None:
    voice = GoogleVoice()
    assert voice.encoding == "mulaw"
    assert voice.telephony_profile
    assert not voice.streaming
    assert voice.language_code == "en-US"
    assert voice.name.startswith("en-US")
    with pytest.raises(dataclasses.FrozenInstanceError):
        voice.name = "other"  # type: ignore[misc]
