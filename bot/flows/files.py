"""Finding and reading flow files within bounds, so what start-up or a reload may cost is capped.

Rules:
- A flow file holds at most ``MAX_FLOW_FILE_BYTES``. The size is checked with ``stat`` before the
  file is opened, and at most the limit plus one byte is ever read, so a file that grew after the
  ``stat`` (or one whose size the system does not report) is refused without being loaded whole.
- Only regular files are read: a FIFO or a device given as a flow file would block or never end.
- A folder is read only if it holds at most ``MAX_FLOWS_PER_FOLDER`` flow files; counting stops
  at the first file past the limit, so a folder of millions of files is not listed whole either.
- Every refusal is a ``FlowFileRefused`` whose text names the limit; the loader reports it as a
  problem of the file or folder (``bot flows check``, start-up and SIGHUP read files alike).
- No YAML here: aliases (a "billion laughs" file) are refused by the loader itself.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Final

# store.yaml is 4 KiB. The system prompt goes with every chat request of every turn, and 256 KiB
# is some 60k tokens: a prompt that slow and costly is a mistake, not a flow. PyYAML is pure Python:
# a flow this size that is mostly its prompt parses in 0.2 to 0.3 s, the worst shapes (256 KiB of
# one-character list items or keys) in 2 to 5 s (shared 2-core EPYC), off the event loop (bot.server.serve).
MAX_FLOW_FILE_BYTES: Final = 256 * 1024
# Every flow's fixed phrases are synthesized at start-up and after each reload, and a reload parses
# every file again (store.yaml: 20 to 35 ms each). A flow per phone line, 100 is more than one
# deployment serves; a folder of thousands (a wrong FLOWS_PATH) would mean thousands of TTS requests.
MAX_FLOWS_PER_FOLDER: Final = 100
FLOW_SUFFIXES: Final = (".yaml", ".yml")


class FlowFileRefused(Exception):
    """A file or folder past a limit of this module; ``str()`` is the reason, without the path."""


def _limit() -> str:
    return f"{MAX_FLOW_FILE_BYTES // 1024} KiB ({MAX_FLOW_FILE_BYTES:,} bytes)"


def read_flow_file(path: Path) -> bytes:
    """The file's bytes. Raises ``FlowFileRefused`` past the size limit, ``OSError`` if unreadable."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise FlowFileRefused("not a regular file: a flow file must be a plain file")
    if info.st_size > MAX_FLOW_FILE_BYTES:
        raise FlowFileRefused(
            f"the file has {info.st_size:,} bytes, over the {_limit()} a flow file may hold"
        )
    with path.open("rb") as file:
        data = file.read(MAX_FLOW_FILE_BYTES + 1)
    if len(data) > MAX_FLOW_FILE_BYTES:  # it grew since the stat
        raise FlowFileRefused(f"the file has more than the {_limit()} a flow file may hold")
    return data


def flow_files_in(folder: Path) -> list[Path]:
    """The folder's ``*.yaml`` and ``*.yml`` files (not sub-folders), sorted by name.

    Raises ``FlowFileRefused`` past ``MAX_FLOWS_PER_FOLDER``, ``OSError`` if it cannot be listed.
    """
    found: list[Path] = []
    for path in folder.iterdir():
        if path.suffix in FLOW_SUFFIXES and path.is_file():
            found.append(path)
            if len(found) > MAX_FLOWS_PER_FOLDER:
                raise FlowFileRefused(
                    f"more than {MAX_FLOWS_PER_FOLDER} flow files in this folder; at most "
                    f"{MAX_FLOWS_PER_FOLDER} are served"
                )
    return sorted(found)
