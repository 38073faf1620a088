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
  call takes a noticeable time and must not stall live calls on the event loop.
- Responses hold call content: ``Cache-Control: no-store``, no referrer, the
  page's Content-Security-Policy, never framed. The WAV honours a single byte ``Range`` so the page's
  player can seek.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.inspector.auth import COOKIE, FailureLimiter, cookie_header, same, session_value
from bot.inspector.page import render_page
from bot.inspector.svg import esc
from bot.inspector.timeline import build_timeline
from bot.recording.format import META_FILE
from bot.recording.reader import Recording, RecordingError
from bot.recording.store import RecordingStore

RECENT_CALLS = 50
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
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


def _ranged(request: web.Request, body: bytes, content_type: str, filename: str) -> web.Response:
    headers = {**_HEADERS, "Accept-Ranges": "bytes", "Content-Disposition": f'inline; filename="{filename}"'}
    match = _RANGE.fullmatch(request.headers.get("Range", "").strip())
    if match is None or not any(match.groups()):
        return web.Response(body=body, content_type=content_type, headers=headers)
    first, last = match.groups()
    size = len(body)
    start, end = (
        (int(first), int(last) if last else size - 1) if first else (max(0, size - int(last)), size - 1)
    )
    end = min(end, size - 1)
    if start > end:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return web.Response(status=206, body=body[start : end + 1], content_type=content_type, headers=headers)


def calls_routes(
    store: RecordingStore, token: str | None, limiter: FailureLimiter | None = None
) -> list[web.RouteDef]:
    """``GET /calls``, ``GET /calls/{day}/{folder}`` and ``GET /calls/{day}/{folder}/call.wav``."""
    failures = limiter if limiter is not None else FailureLimiter()

    async def list_calls(request: web.Request) -> web.Response:
        _check_token(request, token, failures)
        page = await asyncio.to_thread(_list_page, store)
        return web.Response(text=page, content_type="text/html", headers=_HEADERS)

    async def call_page(request: web.Request) -> web.Response:
        _check_token(request, token, failures)
        recording_id = f"{request.match_info['day']}/{request.match_info['folder']}"
        page = await asyncio.to_thread(_call_page, store, recording_id)
        return web.Response(text=page, content_type="text/html", headers=_HEADERS)

    async def call_wav(request: web.Request) -> web.Response:
        _check_token(request, token, failures)
        day, folder = request.match_info["day"], request.match_info["folder"]
        wav = await asyncio.to_thread(lambda: _load(store, f"{day}/{folder}").stereo_wav())
        return _ranged(request, wav, "audio/wav", f"{folder}.wav")

    return [
        web.get("/calls", list_calls),
        web.get("/calls/{day}/{folder}", call_page),
        web.get("/calls/{day}/{folder}/call.wav", call_wav),
    ]
