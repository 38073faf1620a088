"""Every refused request counted, whatever its log line did (``bot.telemetry.log_limit`` drops most of a
flood's).

Rules:
- An aiohttp middleware (``count_refusals``) sees each answer of a known route, returned or raised as an
  ``HTTPException``, and counts those in ``REFUSALS`` (403 signature, 408 slow body, 413 too large, 400
  aborted or not our call, 503 busy or draining) as ``phonebot_requests_refused{route, status}``.
- Labels are bounded: the route's registered path (an unknown path has none and is not counted) and a
  status from the fixed set.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.telemetry.metrics import CallMetrics

REFUSALS = frozenset({400, 403, 408, 413, 503})


def count_refusals(metrics: CallMetrics) -> Middleware:
    """The middleware counting refusals into ``metrics`` (module rules)."""

    def note(request: web.Request, status: int) -> None:
        route = request.match_info.route.resource
        if status in REFUSALS and route is not None:
            metrics.observe("request_refused", {"route": route.canonical, "status": status})

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as refused:
            note(request, refused.status)
            raise
        note(request, response.status)
        return response

    return middleware
