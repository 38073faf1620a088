"""Flow files are read within bounds (``bot.flows.files``), by ``load_flows`` and ``bot flows check`` alike.

Rules checked here: a file over ``MAX_FLOW_FILE_BYTES`` is one problem naming the file and the limit
(a file at the limit loads); a file that grew after its ``stat`` is refused after reading at most the
limit plus one byte; a FIFO is refused without being opened; a folder of more than
``MAX_FLOWS_PER_FOLDER`` flow files is one problem naming the folder; a "billion laughs" file is
refused at its first alias, before anything is expanded.
"""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from bot.flows import files
from bot.flows.check import check
from bot.flows.files import MAX_FLOW_FILE_BYTES, MAX_FLOWS_PER_FOLDER, read_flow_file
from bot.flows.loader import FlowError, load_flows, parse_flow

FLOW = """\
name: {name}
default: {default}
numbers: [{number}]
greeting:
  text: Hello.
system_prompt: Be brief.
"""


def flow_of_size(size: int) -> str:
    """A valid default flow of exactly ``size`` bytes: comment lines pad it."""
    text = FLOW.format(name="store", default="true", number="")
    padding = size - len(text)
    lines, rest = divmod(padding, 80)
    text += ("#" + "x" * 78 + "\n") * lines
    if rest:
        text += "#" + "x" * (rest - 2) + "\n" if rest >= 2 else "\n"
    assert len(text.encode()) == size
    return text


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(FlowError) as caught:
        load_flows(list(paths))
    return [str(p) for p in caught.value.problems]


def test_a_file_at_the_limit_loads_and_one_byte_more_is_refused_naming_the_file_and_limit(
    tmp_path: Path,
) -> None:
    at_limit = tmp_path / "at_limit.yaml"
    at_limit.write_text(flow_of_size(MAX_FLOW_FILE_BYTES), encoding="utf-8")
    assert load_flows(at_limit).default.name == "store"

    over = tmp_path / "over.yaml"
    over.write_text(flow_of_size(MAX_FLOW_FILE_BYTES + 1), encoding="utf-8")
    assert problems_of(over) == [
        f"{over}: the file has 262,145 bytes, over the 256 KiB (262,144 bytes) a flow file may hold"
    ]


def test_flows_check_prints_the_same_line_for_an_oversized_file(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(flow_of_size(3 * MAX_FLOW_FILE_BYTES), encoding="utf-8")
    out = io.StringIO()
    assert check([str(big)], out, env={}) == 1
    assert out.getvalue().splitlines() == [
        f"{big}: the file has 786,432 bytes, over the 256 KiB (262,144 bytes) a flow file may hold",
        "1 error in 1 file(s)",
    ]


def test_a_file_that_grew_after_its_stat_is_read_only_to_the_limit_and_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing.yaml"
    path.write_bytes(b"#" * (4 * MAX_FLOW_FILE_BYTES))
    real_stat = Path.stat
    small = os.stat_result((*real_stat(path)[:6], 0, 0, 0, 0))  # st_size 0, as if still empty
    monkeypatch.setattr(Path, "stat", lambda self, **kw: small if self == path else real_stat(self, **kw))
    reads: list[int] = []
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object) -> object:
        file = real_open(self, *args, **kwargs)  # type: ignore[call-overload]
        real_read = file.read

        def read(size: int = -1) -> bytes:
            reads.append(size)
            data: bytes = real_read(size)
            return data

        file.read = read
        return file

    monkeypatch.setattr(Path, "open", counting_open)
    with pytest.raises(files.FlowFileRefused, match=r"more than the 256 KiB \(262,144 bytes\)"):
        read_flow_file(path)
    assert reads == [MAX_FLOW_FILE_BYTES + 1]


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    # Old code opened it and read until end of file: a writer held open for 2 s bounds that wait.
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    closing = threading.Timer(2.0, os.close, (writer,))
    closing.start()
    try:
        started = time.monotonic()
        assert problems_of(fifo) == [f"{fifo}: not a regular file: a flow file must be a plain file"]
        assert time.monotonic() - started < 1.5
    finally:
        closing.join()


def test_a_folder_of_more_flow_files_than_the_limit_is_one_problem_naming_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    for i in range(MAX_FLOWS_PER_FOLDER):
        text = FLOW.format(name=f"line{i:03}", default=str(i == 0).lower(), number=f'"+1555010{i:04}"')
        (folder / f"line{i:03}.yaml").write_text(text, encoding="utf-8")
    (folder / "notes.txt").write_text("not a flow", encoding="utf-8")
    assert len(load_flows(folder).flows) == MAX_FLOWS_PER_FOLDER  # at the limit: all served

    (folder / "one_more.yml").write_text(
        FLOW.format(name="one_more", default="false", number='"+15559999999"'), encoding="utf-8"
    )
    assert problems_of(folder) == [
        f"{folder}: more than {MAX_FLOWS_PER_FOLDER} flow files in this folder; "
        f"at most {MAX_FLOWS_PER_FOLDER} are served"
    ]


def test_a_billion_laughs_file_is_refused_at_its_first_alias() -> None:
    # Nine levels of ten aliases each would be 10**9 strings if expanded. Aliases were already refused
    # before issue 14 (bot.flows.loader): this guards that, and that nothing is expanded first.
    levels = ['a0: &a0 "lol"'] + [
        f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 10)
    ]
    text = FLOW.format(name="store", default="true", number="") + "\n".join(levels) + "\n"
    started = time.monotonic()
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "flows/lol.yaml")
    assert time.monotonic() - started < 5.0  # generous: expanding it would take hours and gigabytes
    assert [str(p) for p in caught.value.problems] == [
        "flows/lol.yaml:8: YAML syntax error: aliases (*name) are not allowed: repeat the value"
    ]
