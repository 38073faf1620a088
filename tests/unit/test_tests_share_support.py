"""Tests share support, never copies or each other (issue 15; the review's principle 5): checked on the tree.

Rules checked here: no module under ``tests/`` imports a test module (``tests/**/test_*.py``), absolutely
(``tests.e2e.test_server``) or relatively (``.test_server``); and no module under ``tests/`` imports a
helper module kept outside ``tests/support/`` (a child script run by its path, like
``integration/recording_child.py``, may stay beside its one test). So a helper two files share has one
place to go. And no function is written twice under ``tests/``: two functions (or methods, or nested
functions) of ``MIN_STATEMENTS`` statements or more with the same body, whatever their names and
docstrings, are a copy (``greeted`` was written four times, ``FakeClock`` three).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
MIN_STATEMENTS = 2  # one statement (``return x``, a stub) may well coincide


def imported_modules(path: Path) -> list[str]:
    """What ``path`` imports from ``tests`` (``tests.x.y``, ``.y``): each module, and each name imported
    from one (it may be a module too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            sep = "." if node.module else ""
            found += [base, *(f"{base}{sep}{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name.startswith(("tests.", "."))]


def last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def test_no_module_under_tests_imports_a_test_module() -> None:
    offenders = {
        str(path.relative_to(TESTS)): found
        for path in sorted(TESTS.rglob("*.py"))
        if (found := [name for name in imported_modules(path) if last(name).startswith("test_")])
    }
    assert offenders == {}, "import the helper from tests/support/ instead"


def test_no_module_under_tests_imports_a_helper_kept_outside_support() -> None:
    helpers = {
        path.stem
        for path in TESTS.rglob("*.py")
        if not path.name.startswith("test_")
        and path.name not in {"__init__.py", "conftest.py"}
        and path.parent != TESTS / "support"
    }
    offenders = {
        str(path.relative_to(TESTS)): found
        for path in sorted(TESTS.rglob("*.py"))
        if (found := [name for name in imported_modules(path) if last(name) in helpers])
    }
    assert offenders == {}, "shared helpers live in tests/support/"


def test_the_check_sees_every_spelling_of_an_import(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text(
        "from tests.e2e.test_server import sign\n"
        "from .test_flows import edited\n"
        "from . import test_y\n"
        "import tests.unit.test_z\n"
        "from tests.integration import test_w\n"
        "from tests.support.phone import greeted\n"
        "from aiohttp.test_utils import TestClient\n"
    )
    found = [name for name in imported_modules(module) if last(name).startswith("test_")]
    assert found == [
        "tests.e2e.test_server",
        ".test_flows",
        ".test_y",
        "tests.unit.test_z",
        "tests.integration.test_w",
    ]


def function_bodies(path: Path, root: Path) -> dict[str, list[str]]:
    """Each body of ``MIN_STATEMENTS`` statements or more in ``path`` (as ``ast.dump``, docstring left out)
    with where it is written: ``file:name:line``, the file relative to ``root``."""
    found: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        body = node.body
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        if sum(isinstance(n, ast.stmt) for statement in body for n in ast.walk(statement)) >= MIN_STATEMENTS:
            dumped = ast.dump(ast.Module(body=body, type_ignores=[]))
            found.setdefault(dumped, []).append(f"{path.relative_to(root)}:{node.name}:{node.lineno}")
    return found


def copies(root: Path) -> list[list[str]]:
    """The places of each body written more than once in the Python files under ``root``."""
    every: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for body, places in function_bodies(path, root).items():
            every.setdefault(body, []).extend(places)
    return [places for places in every.values() if len(places) > 1]


def test_no_function_is_written_twice_under_tests() -> None:
    assert copies(TESTS) == [], "give the helper one home in tests/support/"


def test_the_copy_check_sees_a_renamed_copy_and_passes_short_bodies(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "async def ended(b):\n"
        "    async with asyncio.timeout(10):\n"
        "        await b.call_ended.wait()\n"
        "    return b.finished_calls[-1]\n"
        "def short(x):\n"
        "    return x\n"
    )
    (tmp_path / "b.py").write_text(
        "class Helpers:\n"
        "    async def finished(self, b):\n"
        '        """Documented, renamed, a method: a copy all the same."""\n'
        "        async with asyncio.timeout(10):\n"
        "            await b.call_ended.wait()\n"
        "        return b.finished_calls[-1]\n"
        "def other_short(y):\n"
        "    return y\n"
        "def same_short(x):\n"
        "    return x\n"
    )
    assert copies(tmp_path) == [["a.py:ended:1", "b.py:finished:2"]]
