"""The README's Layout section matches the tree: a newcomer reading it finds every product module.

Rules checked here: every package of ``bot/`` named in the Layout block (``bot/<layer>/``) exists, and
every layer the import contracts declare has its line; every module of ``bot/`` (but ``__init__``,
``__main__`` and the internals of ``bot/sim/replay/``, described as one) is named in it by file name.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layout_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Layout\n") :]
    return section[section.index("```\n") + 4 : section.index("\n```", section.index("```\n") + 4)]


def test_every_named_package_exists_and_every_layer_has_its_line() -> None:
    block = layout_block()
    named = set(re.findall(r"^(bot/[a-z_]+/)", block, flags=re.MULTILINE))
    assert named, block
    for package in named:
        assert (ROOT / package / "__init__.py").is_file(), package
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    for layer in (name.strip() for entry in layers for name in re.split(r"[|:]", entry)):
        assert f"bot/{layer}" in block, layer


def test_every_product_module_is_named() -> None:
    block = layout_block()
    missing = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if path.name not in {"__init__.py", "__main__.py"}
        and "replay" not in path.relative_to(ROOT / "bot").parts
        and not re.search(rf"(?<![\w.]){re.escape(path.name)}", block)
    ]
    assert not missing, f"not in the README's Layout section: {missing}"
