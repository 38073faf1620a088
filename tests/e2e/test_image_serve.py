"""``bot serve`` runs from the production image's files alone: the product without ``bot/sim/`` and
``emulators/`` (``tests/support/image_tree.py`` lays them out as deploy/Dockerfile does, and the child
Python cannot reach the checkout's copies).

Rules checked here: it starts with the shipped flow, answers /healthz, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.image_tree import BOT, build_image_tree, image_argv
from tests.support.served import serve_env, serve_then_stop


async def test_serve_runs_from_the_image_without_the_simulation_layer(tmp_path: Path) -> None:
    copied = build_image_tree(tmp_path)
    assert not [path for path in copied if path.startswith(("src/emulators/", "src/bot/sim/"))]
    env = serve_env(FLOWS_PATH=str(tmp_path / "app" / "flows"), PYTHONPATH=None)
    stopped = await serve_then_stop(
        image_argv(tmp_path, BOT, "serve"), env, tmp_path / "app", start_timeout_s=30, stop_timeout_s=15
    )
    assert stopped.health["status"] == "ok" and list(stopped.health["flows"]) == ["store"]
    assert '"event": "listening"' in stopped.stdout
    assert "Traceback" not in stopped.stdout + stopped.stderr
