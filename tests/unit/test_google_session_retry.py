"""``GoogleSession``'s retries when the streaming call fails before any audio, against a scripted client
(the SDK's ``streaming_synthesize`` surface: a coroutine taking ``requests`` and returning the response
stream; each call reads the config, then fails as scripted).

Rules checked here: a quota refusal the service made, then masked as INTERNAL "Internal error from Core"
on a later attempt (grpc.aio's write race, grpc/grpc#36066: a server that ends the call while the client
still writes), is reported as the quota refusal it was (kind ``quota``, the fallback voice's cue), and as
soon as the quota retry is over; an INTERNAL with nothing known before it is retried
for the whole budget, then is kind ``refused`` (the service refused, its reason lost): the fallback
voice's cue too; after an UNAVAILABLE the service did say, a masked last try keeps that code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import texttospeech_v1 as tts

from bot.providers.tts.google import _error
from bot.providers.tts.google_stream import QUOTA_RETRY_S, RETRY_BUDGET_S, GoogleSession
from media.errors import ProviderError
from media.splitter import PhraseSplitter

MASKED = "Internal error from Core"  # what grpc.aio says when a write fails after the server's status


class ScriptedClient:
    """Each ``streaming_synthesize`` call reads the first request, then raises the next scripted error."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    async def streaming_synthesize(
        self,
        requests: AsyncIterator[Any],
        timeout: float,  # noqa: ASYNC109 (the SDK's own parameter: the gRPC deadline)
    ) -> AsyncIterator[Any]:
        self.calls += 1
        first = await anext(requests)
        assert "streaming_config" in first
        error = self.errors[min(self.calls - 1, len(self.errors) - 1)]
        return self._fail(error)

    @staticmethod
    async def _fail(error: Exception) -> AsyncIterator[Any]:
        raise error
        yield  # an async generator that fails on its first read


async def first_phrase_error(client: ScriptedClient) -> ProviderError:
    session = GoogleSession(
        client, tts.StreamingSynthesizeConfig(), PhraseSplitter(8.0), _error, timeout_s=10.0
    )
    phrase = session.push("Hello there.")
    with pytest.raises(ProviderError) as info:
        async for _ in phrase:
            pass
    return info.value


async def test_a_quota_refusal_masked_as_internal_on_a_retry_is_still_quota() -> None:
    refused = gexc.ResourceExhausted("Chirp3RequestsPerMinutePerProject")
    client = ScriptedClient([refused, gexc.InternalServerError(MASKED)])
    error = await first_phrase_error(client)
    # Before: the INTERNALs were retried for the whole 1 s budget, then reported as "error": no fallback.
    assert error.kind == "quota"
    assert 2 <= client.calls <= QUOTA_RETRY_S / 0.05 + 2  # given up with the quota retry, not at 1 s


async def test_internal_with_nothing_known_before_is_a_refusal_after_the_whole_budget() -> None:
    client = ScriptedClient([gexc.InternalServerError(MASKED)])
    error = await first_phrase_error(client)
    # Before: kind "error", no fallback; the suite under load saw every try of a quota refusal so.
    assert error.kind == "refused"
    assert client.calls > QUOTA_RETRY_S / 0.2  # retried past the quota retry, within RETRY_BUDGET_S
    assert RETRY_BUDGET_S == 1.0


async def test_another_internal_after_a_quota_refusal_is_the_services_own_error() -> None:
    client = ScriptedClient([gexc.ResourceExhausted("quota"), gexc.InternalServerError("backend")])
    assert (await first_phrase_error(client)).kind == "error"


async def test_an_unavailable_then_masked_internals_keep_the_known_code() -> None:
    client = ScriptedClient([gexc.ServiceUnavailable("backend"), gexc.InternalServerError(MASKED)])
    # Before: kind "refused" whenever the last try was masked (CI, stop 20); the service had said why.
    assert (await first_phrase_error(client)).kind == "unavailable"
