"""``/calls`` over real HTTP on 127.0.0.1: off without a token, 401 without the right one, the list, the
inspector page and the stereo WAV with it (header or query), ids that are not recordings 404, an unreadable
recording 422, byte ranges for the player."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.inspector.routes import calls_routes
from bot.recording import LocalStore
from tests.unit.test_inspector import SID, write_sample_call

TOKEN = "s3cret/t+ken"
QUERY = {"token": TOKEN}
AUTH = {"Authorization": f"Bearer {TOKEN}"}

ClientFactory = Callable[[str | None], Coroutine[Any, Any, TestClient[web.Request, web.Application]]]


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    write_sample_call(tmp_path)
    return LocalStore(tmp_path)


@pytest.fixture
async def make_client(store: LocalStore) -> AsyncIterator[ClientFactory]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(token: str | None) -> TestClient[web.Request, web.Application]:
        app = web.Application()
        app.router.add_routes(calls_routes(store, token))
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def _recording_url(store: LocalStore) -> str:
    (recording_id,) = store.list_recent(10)
    return f"/calls/{recording_id}"


@pytest.mark.parametrize("token", [None, ""])
async def test_without_a_configured_token_nothing_exists(
    make_client: ClientFactory, store: LocalStore, token: str | None
) -> None:
    client = await make_client(token)
    url = _recording_url(store)
    for path in ("/calls", url, f"{url}/call.wav"):
        empty: list[dict[str, Any]] = [
            {},
            {"headers": {"Authorization": "Bearer "}},
            {"params": {"token": ""}},
        ]
        for kwargs in empty:
            response = await client.get(path, **kwargs)
            assert response.status == 404, (path, kwargs)


async def test_missing_or_wrong_token_is_401(make_client: ClientFactory, store: LocalStore) -> None:
    client = await make_client(TOKEN)
    url = _recording_url(store)
    attempts: list[dict[str, Any]] = [
        {},
        {"params": {"token": "nope"}},
        {"headers": {"Authorization": "Bearer nope"}},
        {"headers": {"Authorization": f"Basic {TOKEN}"}},
        {"headers": {"Authorization": "Bearer nope"}, "params": QUERY},  # the header is what counts
    ]
    for path in ("/calls", url, f"{url}/call.wav"):
        for kwargs in attempts:
            response = await client.get(path, **kwargs)
            assert response.status == 401, (path, kwargs)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert SID not in await response.text()


async def test_list_and_page_with_header_or_query(make_client: ClientFactory, store: LocalStore) -> None:
    client = await make_client(TOKEN)
    url = _recording_url(store)
    ways: list[dict[str, Any]] = [{"headers": AUTH}, {"params": QUERY}]
    for kwargs in ways:
        listing = await client.get("/calls", **kwargs)
        assert listing.status == 200 and listing.content_type == "text/html"
        assert listing.headers["Cache-Control"] == "no-store"
        assert listing.headers["Referrer-Policy"] == "no-referrer"
        body = await listing.text()
        assert f'href="{url}?token=s3cret%2Ft%2Bken"' in body and SID in body

        page = await client.get(url, **kwargs)
        assert page.status == 200 and page.content_type == "text/html"
        text = await page.text()
        assert 'id="waveform-caller"' in text and 'id="waveform-bot"' in text and 'class="barge-in"' in text
        assert f'src="{url}/call.wav?token=s3cret%2Ft%2Bken"' in text and "http://" not in text


async def test_ids_that_are_not_recordings_are_404(make_client: ClientFactory) -> None:
    client = await make_client(TOKEN)
    for path in (
        "/calls/2025-03-14/CAnothere",
        "/calls/2025-03-14/CAnothere/call.wav",
        "/calls/not-a-day/CAinspect0001",
        "/calls/2025-03-14/..%2F..%2Fetc",
        "/calls/2025-03-14/%2E%2E",
        "/calls/..",
    ):
        response = await client.get(path, headers=AUTH)
        assert response.status == 404, path


async def test_unreadable_recording_is_422(make_client: ClientFactory, store: LocalStore) -> None:
    client = await make_client(TOKEN)
    url = _recording_url(store)
    (store.root / url.removeprefix("/calls/") / "meta.json").write_text("{not json")
    for path in (url, f"{url}/call.wav"):
        response = await client.get(path, headers=AUTH)
        assert response.status == 422
    listing = await client.get("/calls", headers=AUTH)
    assert listing.status == 200  # one bad recording does not hide the others


async def test_wav_served_whole_and_by_range(make_client: ClientFactory, store: LocalStore) -> None:
    client = await make_client(TOKEN)
    url = f"{_recording_url(store)}/call.wav"
    response = await client.get(url, params=QUERY)
    assert response.status == 200 and response.content_type == "audio/wav"
    assert response.headers["Accept-Ranges"] == "bytes"
    body = await response.read()
    with wave.open(io.BytesIO(body)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        assert wav.getnframes() == pytest.approx(20 * 8000, abs=160)

    part = await client.get(url, headers={**AUTH, "Range": "bytes=0-99"})
    assert part.status == 206 and part.headers["Content-Range"] == f"bytes 0-99/{len(body)}"
    assert await part.read() == body[:100]
    tail = await client.get(url, headers={**AUTH, "Range": "bytes=-10"})
    assert tail.status == 206 and await tail.read() == body[-10:]
    beyond = await client.get(url, headers={**AUTH, "Range": f"bytes={len(body)}-"})
    assert beyond.status == 416
