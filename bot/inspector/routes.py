"""``/calls``: recorded calls over HTTP, for people: a list, one inspector page per call, its stereo WAV.

Rules:
- Off unless a token is configured: without one every route answers 404, as if it did not exist.
  With one, a request must carry ``Authorization: Bearer <token>`` or the session cookie; a browser
  gets the cookie by opening any ``/calls`` URL once with ``?token=<token>``, answered with a redirect
  to the same URL without it (``bot.inspector.auth``). Missing or wrong: 401; too many wrong guesses
  from one address: 429. Links in pages never carry the token.
- Ids come from the URL, so they only reach the disk through ``store.open_path``, which accepts nothing
  but ids shaped like the store's own (no traversal). Not a recording: 404; one that cannot be read: 422.
- Reading files, computing peaks and building the WAV run in a thread (``asyncio.to_thread``): a long
  call takes a noticeable time and must not stall live calls on the event loop. Each of them holds one
  of a few inspector slots (``bot.inspector.slots``: a bounded wait, then 503), after the token check.
- A call's WAV is built once into a disk cache and each request reads its bytes from there
  (``bot.inspector.wav_cache``): six range requests of the player cost one build, not six. A WAV that
  would not fit in that cache is 507, never built.
- Responses hold call content: ``Cache-Control: no-store``, no referrer, the
  page's Content-Security-Policy, never framed. The WAV honours a single byte ``Range`` so the page's
  player can seek (``bot.inspector.ranges``: an invalid or unsatisfiable one is 416, never a 500); its
  ETag is the cache key, so ``If-Range`` works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from bot.inspector.auth import COOKIE, FailureLimiter, cookie_header, same, session_value
from bot.inspector.page import render_page
from bot.inspector.ranges import Part, Unsatisfiable, select_range
from bot.inspector.slots import InspectorSlots
from bot.inspector.svg import esc
from bot.inspector.timeline import build_timeline
from bot.inspector.wav_cache import WavCache, WavTooLong, recording_key
from bot.recording.format import META_FILE
from bot.recording.reader import Recording, RecordingError
from bot.recording.store import RecordingStore

log = structlog.get_logger(__name__)

RECENT_CALLS = 50
SEND_CHUNK = 256 * 1024  # a WAV is sent in reads of this size: what one response holds in memory
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "media-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


_UNAUTHORIZED = (
    "401: open this address once with ?token=<CALLS_TOKEN> (a session cookie then replaces it), or send "
    "Authorization: Bearer <CALLS_TOKEN>."
)


def _check_token(request: web.Request, token: str | None, limiter: FailureLimiter) -> None:
    if not token:
        raise web.HTTPNotFound()
    address = request.remote or "unknown"
    wait = limiter.retry_after(address)
    if wait:  # before any comparison: a throttled address learns nothing from its guesses
        raise web.HTTPTooManyRequests(headers={**_HEADERS, "Retry-After": str(wait)})
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, given = header.partition(" ")
        given = given.strip() if scheme.lower() == "bearer" else ""
        if same(given, token):
            return
        reason = "header"
    elif "token" in request.query:
        if same(request.query["token"], token):
            clean = request.rel_url.with_query([(k, v) for k, v in request.query.items() if k != "token"])
            raise web.HTTPSeeOther(str(clean), headers={**_HEADERS, "Set-Cookie": cookie_header(token)})
        reason = "query"
    elif COOKIE in request.cookies:
        if same(request.cookies[COOKIE], session_value(token)):
            return
        reason = "cookie"
    else:  # nothing tried (a first visit): not a guess
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="calls"'}, text=_UNAUTHORIZED)
    limiter.failed(address, reason)
    raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="calls"'}, text=_UNAUTHORIZED)


def _open(store: RecordingStore, recording_id: str) -> Path:
    try:
        return store.open_path(recording_id)
    except (ValueError, OSError) as exc:
        raise web.HTTPNotFound(text="no such recording") from exc


def _load(store: RecordingStore, recording_id: str) -> Recording:
    try:
        return Recording.load(_open(store, recording_id))
    except RecordingError as exc:
        raise web.HTTPUnprocessableEntity(text=f"unreadable recording: {exc}") from exc


def _meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / META_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _list_page(store: RecordingStore) -> str:
    rows = []
    for recording_id in store.list_recent(RECENT_CALLS):
        try:
            meta = _meta(store.open_path(recording_id))
        except (ValueError, OSError):
            continue  # removed since it was listed
        state = "" if meta.get("complete") is True else " (incomplete)"
        link = esc(f"/calls/{recording_id}")
        cells = [
            f'<a href="{link}">{esc(meta.get("call_sid", recording_id))}</a>{state}',
            *(esc(meta.get(key, "")) for key in ("started_at", "duration_s", "turns", "ended_by", "flow")),
            f'<a href="{link}/call.wav">wav</a>',
        ]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "".join(
        f"<th>{name}</th>" for name in ("call", "started", "seconds", "turns", "ended by", "flow", "")
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        "<title>Recorded calls</title><style>body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px}"
        "table{border-collapse:collapse}td,th{border:1px solid #d5dae1;padding:4px 8px;text-align:left}"
        "</style></head><body><h1>Recorded calls</h1>"
        f'<table id="calls"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        f"<p>{len(rows)} most recent (at most {RECENT_CALLS}).</p></body></html>"
    )


def _call_page(store: RecordingStore, recording_id: str) -> str:
    timeline = build_timeline(_load(store, recording_id))
    return render_page(timeline, audio_url=f"/calls/{recording_id}/call.wav", back_url="/calls")


def _wav_key(store: RecordingStore, recording_id: str) -> tuple[Path, str]:
    folder = _open(store, recording_id)
    return folder, recording_key(recording_id, folder)


async def _send_wav(request: web.Request, fd: int, size: int, etag: str, filename: str) -> web.StreamResponse:
    """The WAV (its fd is closed by the caller), whole or the one range asked for."""
    selection = select_range(
        request.headers.get("Range"), size, if_range=request.headers.get("If-Range"), etag=etag
    )
    if isinstance(selection, Unsatisfiable):
        raise web.HTTPRequestRangeNotSatisfiable(
            headers={**_HEADERS, "Content-Range": selection.content_range(size)}
        )
    headers = {
        **_HEADERS, "Accept-Ranges": "bytes", "ETag": etag, "Content-Type": "audio/wav",
        "Content-Disposition": f'inline; filename="{filename}"',
    }  # fmt: skip
    start, length, status = 0, size, 200
    if isinstance(selection, Part):
        start, length, status = selection.start, selection.length, 206
        headers["Content-Range"] = selection.content_range(size)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    await response.prepare(request)
    if request.method != "HEAD":
        end = start + length
        while start < end:
            chunk = await asyncio.to_thread(os.pread, fd, min(SEND_CHUNK, end - start), start)
            if not chunk:
                break  # cannot happen (a cached WAV is never rewritten in place), but never loop on it
            await response.write(chunk)
            start += len(chunk)
    await response.write_eof()
    return response


def calls_routes(
    store: RecordingStore,
    token: str | None,
    limiter: FailureLimiter | None = None,
    *,
    slots: InspectorSlots | None = None,
    wavs: WavCache | None = None,
    wav_cache: Path | None = None,
) -> list[web.RouteDef]:
    """``GET /calls``, ``GET /calls/{day}/{folder}`` and ``GET /calls/{day}/{folder}/call.wav``.

    ``wav_cache`` is the WAV cache's folder (default: a private folder in the temp dir); ``slots`` and
    ``wavs`` let a test count and hold what the routes do."""
    failures = limiter if limiter is not None else FailureLimiter()
    slots = InspectorSlots() if slots is None else slots
    wavs = WavCache(slots, wav_cache) if wavs is None else wavs

    async def list_calls(request: web.Request) -> web.Response:
        _check_token(request, token, failures)
        async with slots.hold():
            page = await asyncio.to_thread(_list_page, store)
        return web.Response(text=page, content_type="text/html", headers=_HEADERS)

    async def call_page(request: web.Request) -> web.Response:
        _check_token(request, token, failures)
        recording_id = f"{request.match_info['day']}/{request.match_info['folder']}"
        async with slots.hold():
            page = await asyncio.to_thread(_call_page, store, recording_id)
        return web.Response(text=page, content_type="text/html", headers=_HEADERS)

    async def call_wav(request: web.Request) -> web.StreamResponse:
        _check_token(request, token, failures)
        day, name = request.match_info["day"], request.match_info["folder"]
        recording_id = f"{day}/{name}"
        async with slots.hold():
            folder, key = await asyncio.to_thread(_wav_key, store, recording_id)
        try:
            fd, size = await wavs.open(recording_id, folder, key)
        except RecordingError as exc:
            raise web.HTTPUnprocessableEntity(text=f"unreadable recording: {exc}") from exc
        except WavTooLong as exc:
            # 507: the cache cannot store the representation (RFC 4918 section 11.5); the page still works.
            raise web.HTTPInsufficientStorage(text=str(exc), headers=_HEADERS) from exc
        except OSError as exc:  # the cache's disk full or gone: the inspector's trouble, not the caller's
            log.warning("calls_wav_cache_failed", recording_id=recording_id, error=repr(exc))
            raise web.HTTPServiceUnavailable(headers={**_HEADERS, "Retry-After": "30"}) from exc
        try:
            return await _send_wav(request, fd, size, f'"{key}"', f"{name}.wav")
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    return [
        web.get("/calls", list_calls),
        web.get("/calls/{day}/{folder}", call_page),
        web.get("/calls/{day}/{folder}/call.wav", call_wav),
    ]
