"""Types for the ``serve_routes`` fixture (``tests/conftest.py``): aiohttp route tables served on 127.0.0.1.

Rules:
- Only types live here: the fixture is in ``tests/conftest.py`` (two or more test files use it), which may
  import nothing but pytest and the standard library at its top.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]
# Serves ``routes`` in a fresh aiohttp app on a free port of 127.0.0.1: its started test client.
ServeRoutes = Callable[[Iterable[web.AbstractRouteDef]], Awaitable[Client]]
