"""Fixtures shared by test files in every folder (unit, integration, e2e).

Rules:
- A fixture lives here once two or more test files need it; what a single file needs stays in that file.
  Plain helpers (phone scripts, fakes, clocks) are in ``tests/support/`` and are imported, not injected.
- None is autouse: a test file asks for what it needs (``pytestmark = pytest.mark.usefixtures(...)`` for
  the whole file), so reading a test file shows what surrounds its tests.
- This file imports only pytest and the standard library at its top: the codec tests also run in a bare
  Python 3.13 venv (pytest, hypothesis, audioop-lts; ``.ci/run``), which loads it too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from aiohttp import web

    from emulators.openai_server import OpenAIEmulator
    from tests.support.routes import Client, ServeRoutes


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For a test that configures logging (``bot.telemetry.logs.configure_logging``): the root logger's
    handlers and level, structlog's configuration and its context variables are put back afterwards."""
    import structlog  # here, not at the top: see the module's rules

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers = handlers
    root.setLevel(level)


@pytest.fixture
def no_aws_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hermetic: no real credentials, endpoint or settings from the environment or ~/.aws reach boto3."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_MAX_ATTEMPTS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


@pytest.fixture
async def serve_routes() -> AsyncIterator[ServeRoutes]:
    """Serves a route table in a fresh aiohttp app on 127.0.0.1 (``tests.support.routes.ServeRoutes``); every
    client it started is closed afterwards."""
    from aiohttp import web  # here, not at the top: see the module's rules
    from aiohttp.test_utils import TestClient, TestServer

    clients: list[Client] = []

    async def serve(routes: Iterable[web.AbstractRouteDef]) -> Client:
        app = web.Application()
        app.router.add_routes(routes)
        client: Client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        clients.append(client)
        return client

    yield serve
    for client in clients:
        await client.close()


@pytest.fixture
async def openai_emulator() -> AsyncIterator[OpenAIEmulator]:
    """The OpenAI emulator on 127.0.0.1, with no script: a test appends its replies."""
    from emulators.openai_server import OpenAIEmulator  # here, not at the top: see the module's rules

    async with OpenAIEmulator() as emulator:
        yield emulator
