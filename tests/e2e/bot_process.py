"""Running ``python -m bot`` as a user would, in tests: a free local port and a bounded subprocess.

Rules:
- Every process is bounded: ``run_bot`` by ``PROCESS_TIMEOUT_S``, ``serving`` by its ``async with`` (killed
  on the way out if it is still running). Servers listen on 127.0.0.1 only (the caller's ``HOST``/``PORT``).
- ``serving`` sends stdout and stderr to a file: a pipe nobody reads could fill up and stall the bot.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

PROCESS_TIMEOUT_S = 30.0
START_TIMEOUT_S = 30.0  # a loaded CI machine imports the bot's dependencies slowly


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
