"""``bot serve`` runs from the production image's files alone: the product without ``bot/sim/`` and
``emulators/`` (``tests/support/image_tree.py`` lays them out as deploy/Dockerfile does, and the child
Python cannot reach the checkout's copies).

Rules checked here: it starts with the shipped flow, answers /healthz, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.support.image_tree import BOT, build_image_tree, image_argv
from tests.support.served import serve_env, wait_healthy


async def test_serve_runs_from_the_image_without_the_simulation_layer(tmp_path: Path) -> None:
    copied = build_image_tree(tmp_path)
    assert not [path for path in copied if path.startswith(("src/emulators/", "src/bot/sim/"))]
    env = serve_env(FLOWS_PATH=str(tmp_path / "app" / "flows"), PYTHONPATH=None)
    process = await asyncio.create_subprocess_exec(
        *image_argv(tmp_path, BOT, "serve"), env=env, cwd=tmp_path / "app",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        health = await asyncio.wait_for(wait_healthy(f"http://127.0.0.1:{env['PORT']}", process), 30)
        assert health["status"] == "ok" and list(health["flows"]) == ["store"]
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 15)
        assert process.returncode == 0, stderr.decode()[-2000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    assert '"event": "listening"' in stdout.decode()
    assert "Traceback" not in stdout.decode() + stderr.decode()
