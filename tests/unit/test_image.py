"""The production image holds the product without its fakes, checked offline on the file set that
``deploy/Dockerfile`` and ``.dockerignore`` give (``tests/support/image_tree.py``), with the image's
Python view.

Rules checked here: the image has ``bot/`` and ``media/`` (and ``flows/``) but no file of ``emulators/``
or ``bot/sim/``; the Dockerfile's own guard passes on that tree and stops a build that lets the fakes in;
every product module imports without them; ``bot flows check`` and ``bot --help`` work; ``bot demo`` and
``bot replay`` (whatever their options) print one line naming the simulation layer and how to get it, exit
2, and show no traceback; other commands' unknown options stay refused, there and in a checkout; and only
a missing ``bot.sim`` or ``emulators`` counts as the simulation layer missing.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from bot.cli import is_simulation_missing, main
from tests.support.image_tree import BOT, ROOT, build_image_tree, dockerfile_instructions, run_in_image


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("image")
    build_image_tree(tree)
    return tree


def test_the_image_holds_the_product_and_not_its_fakes(tmp_path: Path) -> None:
    copied = set(build_image_tree(tmp_path))
    for needed in ("src/pyproject.toml", "src/bot/cli.py", "src/bot/server/serve.py", "src/media/codec.py"):
        assert needed in copied
    assert "app/flows/store.yaml" in copied
    assert (ROOT / "emulators").is_dir() and (ROOT / "bot" / "sim").is_dir()  # the checkout has them
    fakes = [path for path in copied if path.startswith(("src/emulators/", "src/bot/sim/"))]
    assert fakes == [], "the production image must not ship the simulation layer"
    assert not [path for path in copied if "__pycache__" in path]


def guard_code() -> str:
    """The Python of the Dockerfile's RUN that checks the installed packages hold no fake."""
    [run] = [args for word, args in dockerfile_instructions() if word == "RUN" and "bot.sim" in args]
    words = shlex.split(run)
    return words[words.index("-c") + 1]


def test_the_dockerfile_guard_passes_on_the_image_and_stops_one_with_the_fakes(
    image: Path, tmp_path: Path
) -> None:
    assert run_in_image(image, guard_code()).returncode == 0
    for fake in ("emulators", "bot/sim"):
        tree = tmp_path / fake.replace("/", "-")
        shutil.copytree(image, tree)
        shutil.copytree(ROOT / fake, tree / "src" / fake, ignore=shutil.ignore_patterns("__pycache__"))
        result = run_in_image(tree, guard_code())
        assert result.returncode == 1, result.stderr
        assert "must not hold the simulation layer" in result.stderr


def test_the_image_python_cannot_reach_the_checkout(image: Path) -> None:
    code = (
        "import importlib.util as u, bot, media\n"
        "print(bot.__file__, media.__file__, u.find_spec('emulators'), u.find_spec('bot.sim'))\n"
    )
    result = run_in_image(image, code)
    assert result.returncode == 0, result.stderr
    bot_file, media_file, emulators, sim = result.stdout.split()
    assert Path(bot_file).is_relative_to(image) and Path(media_file).is_relative_to(image)
    assert emulators == sim == "None"


def test_every_product_module_imports_without_the_simulation_layer(image: Path) -> None:
    code = (
        "import importlib, pkgutil, bot, media\n"
        "for package in (bot, media):\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if module.name.endswith('.__main__'):\n"
        "            continue  # runs the command line\n"
        "        try:\n"
        "            importlib.import_module(module.name)\n"
        "        except ModuleNotFoundError as exc:\n"
        "            print(module.name, exc.name)\n"
        "        except Exception as exc:\n"
        "            print(module.name, repr(exc))\n"
        "print('imported', len(sys.modules))\n"
    )
    result = run_in_image(image, code)
    assert result.returncode == 0, result.stderr
    *failed, count = result.stdout.strip().splitlines()
    assert count.startswith("imported ") and int(count.split()[1]) > 100
    # Only an opt-in extra this environment may lack (llama_cpp of local-llm) may be missing: nothing of
    # this project, and no other failure.
    for line in failed:
        _module, missing = line.split(" ", 1)
        assert missing.split(".")[0] not in ("bot", "media", "emulators"), line
        assert re.fullmatch(r"[A-Za-z_][\w.]*", missing), line


def test_flows_check_and_help_work_without_the_simulation_layer(image: Path) -> None:
    checked = run_in_image(image, BOT, "flows", "check")  # ./flows: the image's /app/flows
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "store" in checked.stdout
    helped = run_in_image(image, BOT, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "demo" in helped.stdout and "replay" in helped.stdout
    replay_help = run_in_image(image, BOT, "replay", "--help")
    assert replay_help.returncode == 0, replay_help.stderr
    assert "is not in this install" in " ".join(replay_help.stdout.split())


@pytest.mark.parametrize(
    "argv",
    [
        ["demo"],
        ["demo", "--emulated", "--out", "x"],
        ["replay", "recordings/2026-12-03/CA00"],
        ["replay", "--all", "recordings", "--llm", "live", "--speed", "4"],
    ],
    ids=" ".join,
)
def test_demo_and_replay_say_how_to_get_the_simulation_layer(image: Path, argv: list[str]) -> None:
    result = run_in_image(image, BOT, *argv)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"bot {argv[0]}: the simulation layer (bot/sim/ and emulators/)")
    assert "pip install -e '.[offline]'" in line and "README" in line


def test_other_options_stay_refused(image: Path) -> None:
    result = run_in_image(image, BOT, "flows", "check", "--strict")
    assert result.returncode == 2
    assert "unrecognized arguments: --strict" in result.stderr


@pytest.mark.parametrize("argv", [["replay", "rec", "--bogus"], ["demo", "--bogus"], ["serve", "x"]])
def test_with_the_simulation_layer_unknown_options_stay_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "unrecognized arguments:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "simulation"),
    [
        ("bot.sim", True),
        ("bot.sim.replay.runner", True),
        ("emulators", True),
        ("emulators.phone_call", True),
        ("bot.simulator", False),
        ("bot", False),
        ("emulators_extra", False),
        ("piper", False),
        (None, False),
    ],
)
def test_only_a_missing_simulation_module_is_the_simulation_layer_missing(
    name: str | None, simulation: bool
) -> None:
    assert is_simulation_missing(ModuleNotFoundError(f"No module named {name!r}", name=name)) is simulation
