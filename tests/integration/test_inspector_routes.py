"""``/calls`` over real HTTP on 127.0.0.1: off without a token, 401 without the right one, the list, the
inspector page and the stereo WAV with it (header or session cookie), the token in a URL only exchanged for
the cookie (links never carry it), wrong guesses throttled per address, ids that are not recordings 404, an
unreadable recording 422, byte ranges for the player."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bot.inspector.auth import COOKIE, FAILURE_BURST, FailureLimiter, session_value
from bot.inspector.routes import calls_routes
from bot.recording import LocalStore
from tests.support.routes import Client, ServeRoutes
from tests.support.sample_call import SID, write_sample_call

TOKEN = "s3cret/t+ken-4f1c9e0b7a2d6358c1e0"
QUERY = {"token": TOKEN}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SESSION = {"Cookie": f"{COOKIE}={session_value(TOKEN)}"}

ClientFactory = Callable[..., Coroutine[Any, Any, Client]]


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    write_sample_call(tmp_path)
    return LocalStore(tmp_path)


@pytest.fixture
def make_client(store: LocalStore, tmp_path: Path, serve_routes: ServeRoutes) -> ClientFactory:
    async def make(token: str | None, limiter: FailureLimiter | None = None) -> Client:
        return await serve_routes(calls_routes(store, token, limiter, wav_cache=tmp_path / "wav-cache"))

    return make


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
    client = await make_client(TOKEN, FailureLimiter(burst=100))
    url = _recording_url(store)
    attempts: list[dict[str, Any]] = [
        {},
        {"params": {"token": "nope"}},
        {"headers": {"Authorization": "Bearer nope"}},
        {"headers": {"Authorization": f"Basic {TOKEN}"}},
        {"headers": {"Authorization": "Bearer nope"}, "params": QUERY},  # the header is what counts
        {"headers": {"Cookie": f"{COOKIE}=nope"}},
        {"headers": {"Cookie": f"{COOKIE}={TOKEN}"}},  # the cookie holds a session value, not the token
    ]
    for path in ("/calls", url, f"{url}/call.wav"):
        for kwargs in attempts:
            response = await client.get(path, **kwargs)
            assert response.status == 401, (path, kwargs)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert SID not in await response.text()


async def test_list_and_page_with_header_or_cookie_and_links_without_the_token(
    make_client: ClientFactory, store: LocalStore
) -> None:
    client = await make_client(TOKEN)
    url = _recording_url(store)
    for headers in (AUTH, SESSION):
        listing = await client.get("/calls", headers=headers)
        assert listing.status == 200 and listing.content_type == "text/html"
        assert listing.headers["Cache-Control"] == "no-store"
        assert listing.headers["Referrer-Policy"] == "no-referrer"
        body = await listing.text()
        assert f'href="{url}"' in body and f'href="{url}/call.wav"' in body and SID in body

        page = await client.get(url, headers=headers)
        assert page.status == 200 and page.content_type == "text/html"
        text = await page.text()
        assert 'id="waveform-caller"' in text and 'id="waveform-bot"' in text and 'class="barge-in"' in text
        assert f'src="{url}/call.wav"' in text and "http://" not in text
        # The attack: a link carrying the token ends up in history, proxies' logs, shared screenshots.
        links_with_token = sum(t.count("token=") for t in (body, text))
        assert links_with_token == 0 and "s3cret" not in body + text


async def test_a_token_in_the_url_is_exchanged_for_a_cookie(
    make_client: ClientFactory, store: LocalStore
) -> None:
    client = await make_client(TOKEN)
    url = _recording_url(store)
    for path in ("/calls", url, f"{url}/call.wav"):
        response = await client.get(path, params={**QUERY, "x": "1"}, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"] == f"{path}?x=1"  # the same URL, the token gone
        assert response.headers["Referrer-Policy"] == "no-referrer"
        cookie = response.headers["Set-Cookie"]
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert attributes == {"httponly", "secure", "samesite=strict", "path=/calls"}
        assert cookie.startswith(f"{COOKIE}={session_value(TOKEN)};") and TOKEN not in cookie
        followed = await client.get(response.headers["Location"], headers=SESSION)
        assert followed.status == 200, path


async def test_wrong_guesses_are_throttled_per_address(
    make_client: ClientFactory, store: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """The attack: guess the token as fast as the server answers. Bounded: 200 guesses on 127.0.0.1."""
    client = await make_client(TOKEN)
    tested = throttled = 0
    began = time.monotonic()
    for n in range(200):
        response = await client.get("/calls", params={"token": f"guess-{n:04d}"}, allow_redirects=False)
        assert response.status in (401, 429)
        tested += response.status == 401
        throttled += response.status == 429
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
    seconds = time.monotonic() - began
    print(f"guesses tested {tested} of 200 in {seconds:.2f} s ({tested / seconds:.0f}/s)")
    assert tested == FAILURE_BURST and throttled == 200 - FAILURE_BURST
    # Throttled, even the right token is not compared: a guesser cannot tell a hit from a miss.
    assert (await client.get("/calls", headers=AUTH)).status == 429
    logged = capsys.readouterr().out
    assert logged.count("calls_auth_failed") == FAILURE_BURST and "guess-" not in logged
    assert logged.count("calls_auth_throttled") == 1


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
    response = await client.get(url, headers=SESSION)
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
