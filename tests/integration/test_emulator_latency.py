"""The OpenAI emulator's latencies: seeded long-tailed distributions and scripted values, on the wire.

The distributions are checked as plain functions (reproducible draws, their median and tail); the
emulator is driven by the real ``openai`` SDK over loopback, asserting only lower bounds on time (a
delay the emulator adds is always at least its value; a busy machine only adds more).
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.latency import LogNormal, Scripted, draw
from emulators.openai_script import ChatRequest, Reply
from emulators.openai_server import OpenAIEmulator
from emulators.store_script import StoreScript

USER: list[Any] = [{"role": "user", "content": "Hello"}]


# ---- the distributions ----------------------------------------------------------------------------------


def test_lognormal_has_its_median_and_a_long_tail() -> None:
    latency = LogNormal(median_s=0.6, p99_s=6.0)
    rng = random.Random(7)
    draws = sorted(latency.sample(rng) for _ in range(20_000))
    assert statistics.median(draws) == pytest.approx(0.6, rel=0.05)
    assert draws[int(0.99 * len(draws))] == pytest.approx(6.0, rel=0.15)
    assert draws[-1] > 6.0  # the tail goes past the p99
    assert min(draws) > 0


def test_the_same_seed_gives_the_same_latencies() -> None:
    latency = LogNormal(0.5, 4.0)
    first = [latency.sample(random.Random(3)) for _ in range(3)]
    again = [latency.sample(random.Random(3)) for _ in range(3)]
    assert first == again


@given(median=st.floats(0.01, 5.0), ratio=st.floats(1.0, 50.0), cap=st.floats(0.0, 10.0), seed=st.integers())
def test_a_sample_is_never_negative_nor_past_its_cap(
    median: float, ratio: float, cap: float, seed: int
) -> None:
    value = LogNormal(median, median * ratio, cap_s=cap).sample(random.Random(seed))
    assert 0.0 <= value <= cap


def test_scripted_values_come_in_order_and_the_last_repeats() -> None:
    rng = random.Random(0)
    script = Scripted([0.1, 5.0])
    assert [draw(script, rng) for _ in range(4)] == [0.1, 5.0, 5.0, 5.0]
    assert draw(0.25, rng) == 0.25 and draw(-1.0, rng) == 0.0


def test_bad_distributions_are_refused() -> None:
    with pytest.raises(ValueError, match="median_s <= p99_s"):
        LogNormal(2.0, 1.0)
    with pytest.raises(ValueError, match="at least one value"):
        Scripted([])


# ---- on the wire ------------------------------------------------------------------------------------------


async def first_chunk_after(emu: OpenAIEmulator) -> tuple[float, float]:
    """Seconds to the response headers and to the first chunk of one streamed request."""
    async with openai.AsyncOpenAI(
        base_url=emu.base_url, api_key="test", max_retries=0, timeout=10.0
    ) as client:
        started = time.monotonic()
        stream = await client.chat.completions.create(model="gpt-6-luna", messages=USER, stream=True)
        headers = time.monotonic() - started
        await anext(aiter(stream))
        first = time.monotonic() - started
        await stream.close()
    return headers, first


async def test_a_scripted_first_token_per_request(openai_emulator: OpenAIEmulator) -> None:
    late = Scripted([0.0, 0.6])  # one object, shared by two replies: drawn once per request
    openai_emulator.replies.extend(
        [Reply(text="Quick.", first_token_delay_s=late), Reply(text="Slow.", first_token_delay_s=late)]
    )
    _, quick = await first_chunk_after(openai_emulator)
    _, slow = await first_chunk_after(openai_emulator)
    assert slow >= 0.6 and quick < slow


async def test_headers_with_the_first_token_hold_the_headers_back(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.replies.append(
        Reply(text="Local.", first_token_delay_s=0.5, headers_with_first_token=True)
    )
    headers, first = await first_chunk_after(openai_emulator)
    assert headers >= 0.5 and first >= 0.5
    openai_emulator.replies.append(Reply(text="Hosted.", first_token_delay_s=0.5))
    headers, first = await first_chunk_after(openai_emulator)
    assert first >= 0.5 and headers < first  # the usual case: headers at once, the token later


def test_a_store_script_may_take_longer_after_tools() -> None:
    script = StoreScript(first_token_delay_s=0.0, follow_up_first_token_delay_s=LogNormal(2.0, 8.0))
    call = {"id": "call_1", "type": "function", "function": {"name": "check_hours", "arguments": "{}"}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Are you open monday?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"day": "monday", "hours": "9-5"}'},
    ]
    first = ChatRequest({"model": "m", "messages": messages[:1]}, messages[:1], {}, 0.0)
    follow_up = ChatRequest({"model": "m", "messages": messages}, messages, {}, 0.0)
    assert script(first).first_token_delay_s == 0.0
    assert script(follow_up).first_token_delay_s == LogNormal(2.0, 8.0)
