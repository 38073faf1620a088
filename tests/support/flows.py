"""Call-flow files for tests: the shipped ``flows/store.yaml`` with a few of its lines changed.

Rules:
- A test's flow reads like one a support team would deploy: the shipped store flow, edited by regex
  (``edited`` asserts each pattern matches exactly once, so a change to the shipped file fails loudly).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STORE_YAML = (REPO / "flows" / "store.yaml").read_text(encoding="utf-8")


def edited(text: str, pattern: str, replacement: str) -> str:
    """``text`` with the one match of the multi-line regex ``pattern`` replaced (a test bug otherwise)."""
    result, count = re.subn(pattern, lambda _match: replacement, text, flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} matched {count} times in the store flow"
    return result


def store_flow(
    name: str,
    greeting: str,
    *,
    numbers: tuple[str, ...] = (),
    default: bool = False,
    tag: str | None = None,
    llm: str = "",
    voice: str = "",
    tools: str = "",
) -> str:
    """flows/store.yaml renamed, with its own numbers and greeting.

    ``tag`` adds "Line tag: <tag>." to the system prompt; ``llm`` is extra lines of that section,
    ``voice`` replaces the voice's speaking_rate line; ``tools`` is YAML for extra tools, listed
    before the store's end_call tool.
    """
    text = edited(STORE_YAML, r"^name: store\n", f"name: {name}\n")
    listed = ", ".join(json.dumps(n) for n in numbers)
    text = edited(
        text,
        r"^numbers:\n(?:  - .*\n)+default: .*\n",
        f"numbers: [{listed}]\ndefault: {str(default).lower()}\n",
    )
    text = edited(text, r"^  text: .*$", f"  text: {greeting}")
    if tag is not None:
        text = edited(text, r"^  If you cannot help, offer to take a message\.$",
                      f"  If you cannot help, offer to take a message.\n  Line tag: {tag}.")  # fmt: skip
    if llm:
        text = edited(text, r"^  max_tool_rounds: 3 .*\n", "  max_tool_rounds: 3\n" + llm)
    if voice:
        text = edited(text, r"^  speaking_rate: 1\.0\n", voice)
    if tools:
        text = edited(text, r"^  - type: end_call\n", tools + "\n  - type: end_call\n")
    return text


def write_flow(folder: Path, file_name: str, text: str) -> Path:
    path = folder / file_name
    path.write_text(text, encoding="utf-8")
    return path


def version_of(text: str) -> str:
    """The flow version the server reports: the first 12 hex digits of the file's sha256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def tool_yaml(**fields: str) -> str:
    """One tool of a flow's tools list; values are written as they are (quote them yourself)."""
    first, *rest = fields.items()
    lines = [f"  - {first[0]}: {first[1]}", *(f"    {key}: {value}" for key, value in rest)]
    return "\n".join(lines) + "\n"
