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


def add_import(module: Path, imported: str) -> None:
    """Append to ``module`` a function that imports ``imported``."""
    with module.open("a") as f:
        f.write(f"\n\ndef _added() -> None:\n    import {imported}  # noqa: F401\n")


def test_the_checkout_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("added", "broken"),
    [
        # Inside a function, as the lazy imports of the CLI are: an arrow all the same. 4 broken: the two
        # forbidden arrows, bot.sim protected from emulators, and telemetry reaching up to sim.
        pytest.param(
            {"bot/telemetry/metrics.py": "emulators.voice", "emulators/voice.py": "bot.sim.wer"},
            4,
            id="a_product_module_importing_an_emulator",
        ),
        # 3 broken: bot's layers, the pure core, and bot.call's layers (through the shell, a stage
        # imports the Call).
        pytest.param(
            {"bot/call/speaker.py": "bot.server.app", "bot/core/keypad.py": "asyncio"},
            3,
            id="an_import_up_the_layers_or_asyncio_in_the_core",
        ),
        # The arrow the tools once had: a builder reading the flow file's pydantic declaration.
        pytest.param(
            {"bot/tools/http_tool.py": "bot.flows.tool_specs"},
            1,
            id="the_tools_importing_the_flow_schema",
        ),
        pytest.param(
            {"bot/call/speaker.py": "grpc", "media/codec.py": "concurrent"},
            2,
            id="an_sdk_outside_its_homes_or_a_thread_pool_in_media",
        ),
        # What the telephony side once held (a protocol of the Call's methods), as an import this time.
        pytest.param(
            {"bot/call/telephony.py": "bot.call.call"},
            1,
            id="a_stage_reaching_back_into_the_call",
        ),
    ],
)
def test_a_forbidden_import_breaks_the_contracts(tmp_path: Path, added: dict[str, str], broken: int) -> None:
    copy_tree(tmp_path)
    for module, imported in added.items():
        add_import(tmp_path / module, imported)

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    for module, imported in added.items():
        assert f"{module.removesuffix('.py').replace('/', '.')} -> {imported}" in result.stdout
    assert f"{broken} broken" in result.stdout
