"""Tests share support, never copies or each other (issue 15; the review's principle 5): checked on the tree.

Rules checked here: no module under ``tests/`` imports a test module (``tests/**/test_*.py``), absolutely
(``tests.e2e.test_server``) or relatively (``.test_server``); and no module under ``tests/`` imports a
helper module kept outside ``tests/support/`` (a child script run by its path, like
``integration/recording_child.py``, may stay beside its one test). So a helper two files share has one
place to go.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


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
