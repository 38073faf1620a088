"""Which way imports point: the ``[tool.importlinter]`` contracts in pyproject.toml, checked by the suite as
by ``.ci/run``.

Rules checked here: ``lint-imports`` keeps every contract on this checkout (``emulators`` imports nothing
of ``bot``; ``media`` nothing of ``bot`` or ``emulators``; ``bot`` outside ``bot.sim`` no ``emulators``,
not even through another module; only ``bot.cli`` imports ``bot.sim``; ``media`` no vendor SDK, web
framework or thread pool; a vendor SDK only from ``bot.providers``, ``bot.server.twilio``,
``bot.recording.s3``, ``bot.local_llm`` and ``emulators``; each of bot's layers only the ones below it;
``bot.core`` no asyncio, socket, SDK or logging; inside ``bot.call`` no stage imports the Call or a stage
above it); and the contracts do catch what they forbid: a lazy import of an emulator from a product module,
an import up the layers and asyncio in the pure core, the tools importing the flow schema (flows -> tools,
never back), an SDK in a call stage, a thread pool in media and a stage reaching back into the Call, in a
copy of the tree, break them. Both run ``lint-imports`` in a child process whose ``sys.path`` starts with
the tree under test, so an installed copy of the packages is never the one read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter is in the test extra")

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "media", "emulators")
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", "--no-logo"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # about 1 s on an idle machine; generous for a busy one
        check=False,
    )


def copy_tree(to: Path) -> None:
    """The packages and the contracts, to be broken in the copy."""
    shutil.copy(ROOT / "pyproject.toml", to)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, to / package, ignore=shutil.ignore_patterns("__pycache__"))


def test_the_checkout_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_product_module_importing_an_emulator_breaks_the_contracts(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    # Inside a function, as the lazy imports of the CLI are: an arrow all the same.
    with (tmp_path / "bot" / "telemetry" / "metrics.py").open("a") as f:
        f.write("\n\ndef _fake_in_product() -> None:\n    import emulators.voice  # noqa: F401\n")
    with (tmp_path / "emulators" / "voice.py").open("a") as f:
        f.write("\n\ndef _product_in_fake() -> None:\n    import bot.sim.wer  # noqa: F401\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "bot.telemetry.metrics -> emulators.voice" in result.stdout
    assert "emulators.voice -> bot.sim.wer" in result.stdout
    # the two forbidden arrows, bot.sim protected from emulators, and telemetry reaching up to sim
    assert "4 broken" in result.stdout


def test_an_import_up_the_layers_or_asyncio_in_the_core_breaks_the_contracts(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    with (tmp_path / "bot" / "call" / "speaker.py").open("a") as f:
        f.write("\n\ndef _shell_in_call() -> None:\n    import bot.server.app  # noqa: F401\n")
    with (tmp_path / "bot" / "core" / "keypad.py").open("a") as f:
        f.write("\n\ndef _loop_in_core() -> None:\n    import asyncio  # noqa: F401\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "bot.call.speaker -> bot.server.app" in result.stdout
    assert "bot.core.keypad -> asyncio" in result.stdout
    assert "3 broken" in result.stdout  # and bot.call's layers: through the shell, a stage imports the Call


def test_the_tools_importing_the_flow_schema_breaks_the_layers(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    # The arrow the tools once had: a builder reading the flow file's pydantic declaration.
    with (tmp_path / "bot" / "tools" / "http_tool.py").open("a") as f:
        f.write("\n\ndef _schema_in_tools() -> None:\n    import bot.flows.tool_specs  # noqa: F401\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "bot.tools.http_tool -> bot.flows.tool_specs" in result.stdout
    assert "1 broken" in result.stdout


def test_an_sdk_outside_its_homes_or_a_thread_pool_in_media_breaks_the_contracts(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    with (tmp_path / "bot" / "call" / "speaker.py").open("a") as f:
        f.write("\n\ndef _sdk_in_call() -> None:\n    import grpc  # noqa: F401\n")
    with (tmp_path / "media" / "codec.py").open("a") as f:
        f.write("\n\ndef _pool_in_media() -> None:\n    import concurrent.futures  # noqa: F401\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "bot.call.speaker -> grpc" in result.stdout
    assert "media.codec -> concurrent" in result.stdout
    assert "2 broken" in result.stdout


def test_a_stage_reaching_back_into_the_call_breaks_the_call_s_layers(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    # What the telephony side once held (a protocol of the Call's methods), as an import this time.
    with (tmp_path / "bot" / "call" / "telephony.py").open("a") as f:
        f.write("\n\ndef _the_call() -> None:\n    import bot.call.call  # noqa: F401\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "bot.call.telephony -> bot.call.call" in result.stdout
    assert "1 broken" in result.stdout
