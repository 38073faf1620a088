"""Running ``python -m bot`` as a user would, in tests: a complete environment, a free local port, a
bounded subprocess, and what it logs and answers.

Rules:
- Every process is bounded: ``run_bot`` by ``PROCESS_TIMEOUT_S``, ``serve_then_stop`` by its timeouts,
  ``serving`` and ``serve_logged`` by their ``async with`` (killed on the way out if still running).
  Servers listen on 127.0.0.1 only (the caller's ``HOST``/``PORT``).
- ``serving`` sends stdout and stderr to a file: a pipe nobody reads could fill up and stall the bot.
- ``serve_env`` is complete and valid on its own: the provider endpoints are unused local ports (start-up
  must not need them), and the child runs this checkout's code (``PYTHONPATH``), whichever checkout the
  environment installed (git worktrees). Its secrets are ``TWILIO_SECRET`` and ``OPENAI_SECRET``, so a
  test can sign with the one and look for both in what the bot writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.sim.rig import PUBLIC_BASE_URL, Bench
from tests.support.flows import REPO
from tests.support.ports import free_port

PROCESS_TIMEOUT_S = 30.0
START_TIMEOUT_S = 30.0  # a loaded CI machine imports the bot's dependencies slowly


def run_bot(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m bot ARGS`` that must stop by itself; killed if it does not."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *args], env=env, cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=PROCESS_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@dataclass
class ServedBot:
    """A running ``bot serve``: its URL, process and log file (stdout and stderr)."""

    url: str
    process: asyncio.subprocess.Process
    log_path: Path

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines whose ``event`` is ``name``, in order."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == name:
                found.append(record)
        return found

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(self.url + "/healthz") as response,
        ):
            body: dict[str, Any] = await response.json()
            return response.status, body

    async def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, then the exit code (the bot drains; with no live call it exits at once)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), timeout_s)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


class ServeExited(Exception):
    """``bot serve`` exited before it answered /healthz."""


async def wait_healthy(url: str, process: asyncio.subprocess.Process) -> dict[str, Any]:
    """``/healthz`` once it answers 200; ``ServeExited`` if the process ends first. Unbounded: wrap it."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while True:
            if process.returncode is not None:
                raise ServeExited(f"bot serve exited with {process.returncode} before it answered")
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        body: dict[str, Any] = await response.json()
                        return body
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)


@asynccontextmanager
async def serving(env: dict[str, str], cwd: Path, log_path: Path) -> AsyncIterator[ServedBot]:
    """``python -m bot serve`` with exactly ``env`` (``HOST``/``PORT`` included), once it answers /healthz."""
    url = f"http://127.0.0.1:{env['PORT']}"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", env=env, cwd=cwd,
            stdout=log_file, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            try:
                await asyncio.wait_for(wait_healthy(url, process), START_TIMEOUT_S)
            except (ServeExited, TimeoutError) as exc:
                raise AssertionError(f"{exc!r}; its log ends:\n{_tail(log_path)}") from exc
            yield ServedBot(url, process, log_path)
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()


@dataclass(frozen=True)
class Stopped:
    """What a served bot answered on /healthz, then how it ended after SIGTERM."""

    health: dict[str, Any]
    returncode: int
    stdout: str
    stderr: str


async def serve_then_stop(
    argv: Sequence[str], env: dict[str, str], cwd: Path, *, start_timeout_s: float, stop_timeout_s: float
) -> Stopped:
    """Run ``argv`` (a ``bot serve`` listening on ``env``'s ``PORT``) until /healthz answers 200, then SIGTERM
    it: its health and how it ended (it must exit 0). Killed on the way out if it is still running."""
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        health = await asyncio.wait_for(
            wait_healthy(f"http://127.0.0.1:{env['PORT']}", process), start_timeout_s
        )
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), stop_timeout_s)
        assert process.returncode == 0, stderr.decode()[-2000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    return Stopped(health, process.returncode, stdout.decode(), stderr.decode())


TWILIO_SECRET = "tw-secret-token-8f3a91"
OPENAI_SECRET = "sk-secret-key-51c2d7"


def serve_env(flows: Path | None = None, /, **overrides: str | None) -> dict[str, str]:
    """A complete, valid environment for ``bot serve`` on 127.0.0.1 serving ``flows`` (default: the
    shipped ``flows/``); ``None`` removes a variable."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ.get("PYTHONPATH") or str(REPO),  # a worktree's own code, else this one's
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_AUTH_TOKEN": TWILIO_SECRET,
        "OPENAI_API_KEY": OPENAI_SECRET,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        "GOOGLE_TTS_ENDPOINT": f"127.0.0.1:{free_port()}",
        "FLOWS_PATH": str(REPO / "flows" if flows is None else flows),
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def serve_refusing(flows: Path, cwd: Path, **extra: str) -> list[str]:
    """``bot serve`` on ``flows``: it must exit 2; its stderr lines."""
    result = run_bot(["serve"], serve_env(flows, **extra), cwd)
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert '"event": "listening"' not in result.stdout
    return result.stderr.strip().splitlines()


@asynccontextmanager
async def hostile_bot(tmp_path: Path, **env: str) -> AsyncIterator[ServedBot]:
    """``bot serve`` in ``tmp_path`` with ``serve_env(**env)``, logging to ``bot.log`` there."""
    async with serving(serve_env(**env), tmp_path, tmp_path / "bot.log") as bot:
        yield bot


class ServeLog:
    """Collects ``bot serve``'s JSON log lines (stdout) while it runs."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.entries: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            with contextlib.suppress(ValueError):
                entry = json.loads(raw)
                if isinstance(entry, dict):
                    self.entries.append(entry)
                    self._changed.set()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e.get("event") == name]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 15.0) -> dict[str, Any]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while len(self.events(name)) < count:
                self._changed.clear()
                if self._task.done():
                    raise AssertionError(f"bot serve's log ended before {name!r}")
                await self._changed.wait()
        return self.events(name)[count - 1]

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@asynccontextmanager
async def serve_logged(
    env: dict[str, str], cwd: Path, *, stderr: int = asyncio.subprocess.PIPE
) -> AsyncIterator[tuple[asyncio.subprocess.Process, ServeLog]]:
    """``python -m bot serve`` with exactly ``env``, as soon as it runs (not yet listening), and its JSON
    log (stdout) collected as it runs; ``stderr`` a pipe (read it once the process ended) or
    ``asyncio.subprocess.STDOUT``. Killed on the way out if it is still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=stderr
    )
    assert process.stdout is not None
    log = ServeLog(process.stdout)
    try:
        yield process, log
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await log.aclose()


async def healthz(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """``GET url`` (a ``/healthz`` URL): it answers 200; its JSON body."""
    async with http.get(url) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def active_calls(bot: Bench | ServedBot) -> int:
    """``active_calls`` as ``/healthz`` reports it (it answers 200), of the bench's server or a served bot."""
    url = bot.url if isinstance(bot, ServedBot) else bot.server.url
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.get(url + "/healthz") as response,
    ):
        assert response.status == 200
        count: Any = (await response.json())["active_calls"]
    assert isinstance(count, int)
    return count
