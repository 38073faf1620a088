"""The chat stream's deadlines: the real ``openai`` SDK against the OpenAI emulator on 127.0.0.1.

Rules checked: a late first token is waited for (up to ``first_token_s``), not taken for a stall;
the wait for the headers and the SDK's retries fall within the first-token deadline (some servers
send the headers only with the first token); a role-only chunk is not a first token; once text
streams, a gap of ``gap_s`` is a stall; a refused connection is ``connect_error``. Timings are
asserted with generous margins (the machine may be busy), never tightly.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import pytest

from bot.core.tool_calls import ToolCallAssembler
from bot.providers.llm.openai_chat import OpenAIChatModel, StreamDeadlines, make_client
from bot.providers.llm.protocol import ChatOptions
from emulators.latency import Scripted
from emulators.openai_script import Reply
from emulators.openai_server import OpenAIEmulator
from media.errors import ProviderError

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


@pytest.fixture
async def emu() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        yield emulator


def chat(base_url: str, *, max_retries: int = 1, **deadlines: float) -> OpenAIChatModel:
    client = make_client("sk-test", base_url, max_retries=max_retries)
    return OpenAIChatModel(client, model="gpt-6-luna", deadlines=StreamDeadlines(**deadlines))


async def answer(model: OpenAIChatModel, options: ChatOptions | None = None) -> str:
    assembler = ToolCallAssembler()
    text = ""
    try:
        async for chunk in model.stream(MESSAGES, [], options):
            text += assembler.feed(chunk)
    finally:
        await model.aclose()
    return text


async def failure(model: OpenAIChatModel, options: ChatOptions | None = None) -> tuple[str, float]:
    """The ProviderError kind and how long after the request it came."""
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await answer(model, options)
    return info.value.kind, time.monotonic() - started


async def test_a_first_token_later_than_the_old_stall_timer_is_waited_for(emu: OpenAIEmulator) -> None:
    emu.replies.append(Reply(text="Here it is.", first_token_delay_s=1.0))
    # The old single timer (1.5 s default, here 0.3 s) covered the first token too: this was a "stall".
    assert await answer(chat(emu.base_url, first_token_s=3.0, gap_s=0.3)) == "Here it is."


async def test_a_first_token_later_than_its_deadline_fails_at_the_deadline(emu: OpenAIEmulator) -> None:
    emu.replies.append(Reply(text="Too late.", first_token_delay_s=30.0))
    kind, after = await failure(chat(emu.base_url, first_token_s=0.8, gap_s=0.2))
    assert kind == "first_token_timeout"
    assert 0.75 <= after <= 3.0  # not at the gap deadline, and not much later than its own
    assert len(emu.chat_requests) == 1  # the SDK did not retry behind the deadline's back


async def test_the_flow_may_wait_longer_for_its_first_token(emu: OpenAIEmulator) -> None:
    emu.replies.append(Reply(text="Thought it through.", first_token_delay_s=1.0))
    model = chat(emu.base_url, first_token_s=0.3)
    assert await answer(model, ChatOptions(first_token_timeout_s=3.0)) == "Thought it through."


async def test_headers_sent_only_with_the_first_token_are_not_a_connect_failure(emu: OpenAIEmulator) -> None:
    emu.replies.append(
        Reply(text="Local model here.", first_token_delay_s=1.0, headers_with_first_token=True)
    )
    assert await answer(chat(emu.base_url, connect_s=0.3, first_token_s=3.0)) == "Local model here."


async def test_a_role_chunk_is_not_a_first_token(emu: OpenAIEmulator) -> None:
    # Chunk 1 is the role-only delta; then nothing: the first-token deadline applies, not the gap one.
    emu.replies.append(Reply(text="Never said.", stall_after_chunks=1))
    kind, after = await failure(chat(emu.base_url, first_token_s=1.0, gap_s=0.2))
    assert kind == "first_token_timeout"
    assert after >= 0.95


async def test_a_stream_that_stops_mid_answer_is_a_stall_after_the_gap(emu: OpenAIEmulator) -> None:
    emu.replies.append(Reply(text="Our sale starts today with", stall_after_chunks=3))
    kind, after = await failure(chat(emu.base_url, first_token_s=5.0, gap_s=0.4))
    assert kind == "stall"
    assert 0.35 <= after <= 3.0


async def test_chunk_gaps_under_the_deadline_are_fine_and_scripted_per_chunk(emu: OpenAIEmulator) -> None:
    emu.replies.append(Reply(text="one two three four", chunk_delay_s=Scripted([0.0, 0.3, 0.0])))
    assert await answer(chat(emu.base_url, gap_s=1.0)) == "one two three four"


async def test_the_sdks_retry_back_off_counts_against_the_first_token(emu: OpenAIEmulator) -> None:
    # retry-after-ms 5 s: the SDK would sleep it (openai/_base_client.py:907-909) and try again.
    emu.replies.extend([Reply(status=429, retry_after_ms=5000), Reply(text="Finally.")])
    kind, after = await failure(chat(emu.base_url, first_token_s=0.8))
    assert kind == "first_token_timeout"
    assert after <= 3.0
    assert len(emu.chat_requests) == 1


async def test_a_server_error_retried_within_the_deadline_is_answered(emu: OpenAIEmulator) -> None:
    emu.replies.extend([Reply(status=500), Reply(text="Second time lucky.")])
    assert await answer(chat(emu.base_url, first_token_s=5.0)) == "Second time lucky."
    assert len(emu.chat_requests) == 2


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kind, after = await failure(chat(f"http://127.0.0.1:{port}/v1", max_retries=0, first_token_s=5.0))
    assert kind == "connect_error"
    assert after < 3.0


def test_deadlines_must_be_positive() -> None:
    with pytest.raises(ValueError, match="> 0"):
        StreamDeadlines(gap_s=0)
