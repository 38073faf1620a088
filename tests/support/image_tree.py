"""The production image's files, laid out offline the way ``deploy/Dockerfile`` and the root ``.dockerignore``
lay them out, and a Python that sees only them: the image's contents tested without Docker.

Rules:
- ``.dockerignore`` is read with Docker's rules (github.com/moby/patternmatcher, patternmatcher.go:
  ``MatchesOrParentMatches`` and ``Pattern.compile``): blank lines and ``#`` lines are skipped, a pattern
  is cleaned and loses a leading ``/``; ``*`` and ``?`` stop at ``/``, ``**`` crosses folders; a pattern
  matching a file or any folder above it decides, and the last such pattern wins (``!`` takes the path
  back in).
- ``build_image_tree(dest)`` copies every ``COPY`` of the Dockerfile that reads the build context (not
  ``--from``) to ``dest`` + its target (``/src/bot`` lands in ``dest/src/bot``), file by file, leaving out
  what the context leaves out. The build stage's ``/src`` is the tree ``pip install .`` installs; the
  runtime stage's ``/app/flows`` is the shipped flow folder.
- ``run_in_image`` (and ``image_argv``) runs Python with ``dest/src`` first on ``sys.path`` and without the
  finders an editable install adds (``__editable__*``) or the checkout itself, so a module the image lacks
  cannot be found in some checkout instead. The real image installs ``/src`` into a venv's site-packages:
  the same modules.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"  # the build context is the repository root
CHILD_TIMEOUT_S = 60.0  # a few seconds on an idle machine; generous for a busy one

# The child's first lines: forget every way to the checkout's packages except the image tree.
ISOLATE = """\
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks if not getattr(h, "__module__", "").startswith("__editable__")]
sys.path[:] = [sys.argv.pop(1)] + [p for p in sys.path if p and "__editable__" not in p and p != {root!r}]
sys.path_importer_cache.clear()
"""
# ``bot ARGS`` as its console script runs it.
BOT = "from bot.cli import main\nsys.argv[0] = 'bot'\nraise SystemExit(main(sys.argv[1:]))\n"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(takes the path back in, pattern) per ``.dockerignore`` line, in order."""
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
            rules.append((line.startswith("!"), _glob_regex(pattern)))
    return rules


def in_build_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context holds ``path`` (relative to the repository root, with ``/``)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]  # its folders, then itself
    sent = True
    for takes_back, rule in rules:
        if any(rule.fullmatch(candidate) for candidate in candidates):
            sent = takes_back
    return sent


def build_image_tree(dest: Path) -> list[str]:
    """Copy what the image's ``COPY`` lines take into ``dest``; the copied paths, relative to ``dest``."""
    rules = ignore_rules()
    copied: list[str] = []
    workdir = "/"
    for word, args in dockerfile_instructions():
        if word == "FROM":
            workdir = "/"  # each stage starts afresh
        if word == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, args))
        if word != "COPY" or "--from=" in args:
            continue
        *sources, target = shlex.split(args)
        target_dir = posixpath.normpath(posixpath.join(workdir, target))
        for source in sources:
            top = ROOT / source
            files = sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else [top]
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                if not in_build_context(relative, rules):
                    continue
                inside = file.relative_to(top).as_posix() if top.is_dir() else file.name
                landed = posixpath.join(target_dir, inside).lstrip("/")
                (dest / landed).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, dest / landed)
                copied.append(landed)
    return copied


def image_argv(tree: Path, code: str, *args: str) -> list[str]:
    """The command line of a Python running ``code`` with only what ``tree`` holds at ``/src`` importable.

    Run it without ``PYTHONPATH`` in its environment (``run_in_image`` drops it)."""
    return [sys.executable, "-c", ISOLATE.format(root=str(ROOT)) + code, str(tree / "src"), *args]


def run_in_image(
    tree: Path, code: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``code`` in a Python that imports only what ``tree`` (from ``build_image_tree``) holds at ``/src``."""
    child_env = {k: v for k, v in (env if env is not None else os.environ).items() if k != "PYTHONPATH"}
    return subprocess.run(
        image_argv(tree, code, *args),
        cwd=cwd if cwd is not None else tree / "app",
        env=child_env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
