"""Loading call-flow files: YAML text in, validated ``Flow`` objects (or every problem, with its line) out.

Flow files are YAML. Support teams, not programmers, write these files and review them in pull
requests, so the format has to read like a form, allow comments (``# why we say this``) and hold
long texts such as the system prompt as they are written: a YAML ``|`` block keeps every line
without quotes or escapes. TOML reads well too, but a list of tools with nested JSON-schema
parameters turns into ``[[tools]]`` and ``[tools.parameters.properties.day]`` headers far from
their tool, and Python's ``tomllib`` reports no positions, so we could not say on which line a
mistake is. PyYAML's composer keeps the line of every key, so every message names the file, the
line, the field and the reason (``flows/store.yaml:14: tools[2].timeout_s: must be > 0, got -1``).
We also close YAML's known traps: a key written twice is an error (plain YAML keeps the last one
silently), only ``true``/``false`` are booleans (``no``, ``on``, ``yes`` stay text), numbers are
plain decimals (``0100`` is not octal, ``9:30`` is not a number), ``+15550100`` is text so phone
numbers need no quotes, and aliases (``*name``) are refused.

Rules:
- Every problem of a file is reported, not just the first: a YAML syntax error (one per file: the
  parser stops there), duplicate keys, unsupported tags and values, then every pydantic error
  (none for a value already reported), each mapped from its ``loc`` to the line of the key or list
  item it names; a missing field points at its parent. Messages are sorted by line. A header value
  is never repeated in a message.
- Nothing here raises anything but ``FlowError`` for a bad file, whatever its content.
- ``load_flows`` adds the rules across files: unique flow names, a number served by one flow only,
  exactly one default flow. A directory means its ``*.yaml`` and ``*.yml`` files (not sub-folders).
- Files and folders are read within ``bot.flows.files``' limits (size of a file, files per folder):
  one past a limit is a problem naming it and the limit, and is never loaded whole.
- Routing a call to a flow is the built book's (``bot.flows.line_book.LineBook.route``), never done here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]
from pydantic import ValidationError

from bot.flows.files import FlowFileRefused, flow_files_in, read_flow_file
from bot.flows.messages import display_path, reason_for, without_tag
from bot.flows.model import Flow, Loc

DEFAULT_FLOW_DIR = Path("flows")
_TAG = "tag:yaml.org,2002:"


@dataclass(frozen=True)
class FlowProblem:
    file: str | None  # None: a rule across all the flows
    line: int | None
    path: str  # field path like tools[2].timeout_s; "" for the whole file
    reason: str

    def __str__(self) -> str:
        where = self.file or "flows"
        if self.file is not None and self.line is not None:
            where = f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.reason}" if self.path else f"{where}: {self.reason}"


class FlowError(Exception):
    """One or more flow files are invalid; ``str()`` is one line per problem."""

    def __init__(self, problems: Sequence[FlowProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


class _FlowYamlLoader(yaml.SafeLoader):  # type: ignore[misc, unused-ignore]
    """SafeLoader with YAML 1.2-style plain scalars and no aliases (see the module docstring)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call, unused-ignore]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed: repeat the value", mark
            )
        return super().compose_node(parent, index)


_FlowYamlLoader.yaml_implicit_resolvers = {}  # drop YAML 1.1's: only the ones below
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^-?[0-9]+$", "-0123456789"),
    ("float", r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?$", "-+.0123456789"),
    ("float", r"^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$", "-+."),
):
    _FlowYamlLoader.add_implicit_resolver(_TAG + _tag, re.compile(_pattern), list(_first))


@dataclass
class _Document:
    """Plain data built from the YAML nodes, with the line of every key and list item."""

    file: str
    data: Any = None
    version: str = ""  # the first 12 hex digits of the text's sha256 (logged with every call)
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[FlowProblem] = field(default_factory=list)
    unreadable: set[Loc] = field(default_factory=set)  # values already reported: no second message

    def line_for(self, loc: Loc) -> int:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1

    def problem(self, loc: Loc, reason: str, line: int | None = None) -> FlowProblem:
        return FlowProblem(self.file, line or self.line_for(loc), display_path(loc), reason)

    def build(self, node: Any, loc: Loc) -> Any:
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, "map", loc)
            mapping: dict[str, Any] = {}
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problems.append(self.problem(loc, "keys must be plain names", line))
                    continue
                key = key_node.value
                if key in first_line:
                    reason = f"duplicate key {key!r} (first at line {first_line[key]}); write each key once"
                    self.problems.append(self.problem((*loc, key), reason, line))
                first_line.setdefault(key, line)
                self.lines[(*loc, key)] = line
                mapping[key] = self.build(value_node, (*loc, key))
            return mapping
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, "seq", loc)
            items = []
            for i, item in enumerate(node.value):
                self.lines[(*loc, i)] = item.start_mark.line + 1
                items.append(self.build(item, (*loc, i)))
            return items
        return self._scalar(node, loc)

    def _check_tag(self, node: Any, expected: str, loc: Loc) -> None:
        if node.tag != _TAG + expected:
            self.problems.append(self.problem(loc, f"unsupported tag {node.tag}", node.start_mark.line + 1))

    def _scalar(self, node: Any, loc: Loc) -> Any:
        tag, text = str(node.tag).removeprefix(_TAG), node.value
        try:
            if tag == "str":
                return text
            if tag == "null":
                return None
            if tag == "bool":
                return text.lower() == "true"
            if tag == "int":
                return int(text, 10)
            if tag == "float":
                return float(text.lower().replace(".inf", "inf").replace(".nan", "nan"))
        except ValueError:
            reason = f"{text!r} is not a valid !!{tag}"
        else:
            reason = f"unsupported tag {node.tag}"
        self.problems.append(self.problem(loc, reason, node.start_mark.line + 1))
        self.unreadable.add(loc)
        return text


def _validation_problems(exc: ValidationError, doc: _Document) -> list[FlowProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        if err["type"] == "flow_rules":
            problems += [doc.problem(loc, reason) for loc, reason in err["ctx"]["problems"]]
            continue
        loc = without_tag(tuple(err["loc"]))
        if any(loc[: len(bad)] == bad for bad in doc.unreadable):
            continue
        reason = reason_for(err, loc)
        if err["type"].startswith("union_tag"):
            loc = (*loc, "type")
        problems.append(doc.problem(loc, reason))
    return problems


def _syntax_problem(exc: yaml.YAMLError, text: str, file: str) -> FlowProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    # A ReaderError (a bad character) has a position, not a mark.
    line = mark.line + 1 if mark is not None else text.count("\n", 0, getattr(exc, "position", 0)) + 1
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.reader.ReaderError):
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        problem = f"character {character!r} is not allowed in YAML text"
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark.line + 1 != line:
        problem += f" ({context} at line {context_mark.line + 1})"
    return FlowProblem(file, line, "", f"YAML syntax error: {problem}")


@dataclass(frozen=True)
class _Parsed:
    file: str
    flow: Flow | None
    document: _Document
    problems: list[FlowProblem]


def _parse(text: str, file: str) -> _Parsed:
    doc = _Document(file, version=hashlib.sha256(text.encode("utf-8")).hexdigest()[:12])
    try:
        root = yaml.compose(text.removeprefix("\ufeff"), Loader=_FlowYamlLoader)
    except yaml.YAMLError as exc:
        return _Parsed(file, None, doc, [_syntax_problem(exc, text, file)])
    except RecursionError:
        return _Parsed(file, None, doc, [FlowProblem(file, 1, "", "the file is nested too deeply")])
    if root is None:
        problem = FlowProblem(file, 1, "", "the file is empty: a flow needs name, greeting and system_prompt")
        return _Parsed(file, None, doc, [problem])
    doc.lines[()] = root.start_mark.line + 1
    try:
        doc.data = doc.build(root, ())
        flow: Flow | None = Flow.model_validate(doc.data)
    except ValidationError as exc:
        flow = None
        doc.problems += _validation_problems(exc, doc)
    except RecursionError:
        flow = None
        doc.problems.append(FlowProblem(file, 1, "", "the file is nested too deeply"))
    problems = sorted(doc.problems, key=lambda p: p.line or 0)
    return _Parsed(file, flow if not problems else None, doc, problems)


def _read(path: Path) -> tuple[str | None, list[FlowProblem]]:
    try:
        data = read_flow_file(path)
    except OSError as exc:
        return None, [FlowProblem(str(path), None, "", f"cannot read the file: {exc.strerror or exc}")]
    except FlowFileRefused as exc:
        return None, [FlowProblem(str(path), None, "", str(exc))]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, [FlowProblem(str(path), line, "", "the file is not UTF-8 text")]


def _parse_file(path: Path) -> _Parsed:
    text, problems = _read(path)
    if text is None:
        return _Parsed(str(path), None, _Document(str(path)), problems)
    return _parse(text, str(path))


def parse_flow(text: str, file: str = "<flow>") -> Flow:
    """One flow from YAML text; ``file`` names it in messages. Raises ``FlowError``."""
    parsed = _parse(text, file)
    if parsed.flow is None:
        raise FlowError(parsed.problems)
    return parsed.flow


def load_flow(path: Path | str) -> Flow:
    """One flow file, checked on its own (no rules across files). Raises ``FlowError``."""
    parsed = _parse_file(Path(path))
    if parsed.flow is None:
        raise FlowError(parsed.problems)
    return parsed.flow


def cross_flow_problems(flows: Sequence[Flow], files: Sequence[str]) -> list[tuple[int | None, Loc, str]]:
    """Rules across flows as ``(flow index or None for the whole set, loc, reason)``."""
    problems: list[tuple[int | None, Loc, str]] = []
    named: dict[str, int] = {}
    served: dict[str, int] = {}
    defaults: list[int] = []
    for i, flow in enumerate(flows):
        if flow.name in named:
            problems.append(
                (i, ("name",), f"{flow.name!r} is also the name of the flow in {files[named[flow.name]]}")
            )
        named.setdefault(flow.name, i)
        for k, number in enumerate(flow.numbers):
            owner = served.setdefault(number, i)
            if owner != i:
                other = flows[owner]
                problems.append(
                    (i, ("numbers", k), f"{number} is also served by flow {other.name!r} ({files[owner]})")
                )
        if flow.default:
            if defaults:
                first = flows[defaults[0]]
                reason = f"flow {first.name!r} ({files[defaults[0]]}) is already the default; only one may be"
                problems.append((i, ("default",), reason))
            defaults.append(i)
    if flows and not defaults:
        problems.append(
            (None, (), "no flow has default: true; exactly one must (it answers numbers no flow lists)")
        )
    return problems


@dataclass(frozen=True)
class FlowSet:
    """The flows the server answers with; construction checks the rules across flows."""

    flows: tuple[Flow, ...]
    files: tuple[str, ...] = ()  # the file of each flow, in the same order
    documents: tuple[_Document, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        files = self.files or tuple("<flow>" for _ in self.flows)
        object.__setattr__(self, "files", files)
        if not self.flows:
            raise FlowError([FlowProblem(None, None, "", "there are no flows")])
        problems = cross_flow_problems(self.flows, files)
        if problems:
            raise FlowError(
                [
                    FlowProblem(None if i is None else files[i], None, display_path(loc), why)
                    for i, loc, why in problems
                ]
            )

    @property
    def default(self) -> Flow:
        return next(flow for flow in self.flows if flow.default)

    def version(self, index: int) -> str:
        return self.documents[index].version if self.documents else ""

    def problem(self, index: int, loc: Loc, reason: str) -> FlowProblem:
        """A problem found later (building tools) at ``loc`` of flow ``index``, with its line."""
        if self.documents:
            return self.documents[index].problem(loc, reason)
        return FlowProblem(self.files[index], None, display_path(loc), reason)


def _expand(paths: Path | str | Iterable[Path | str]) -> tuple[list[Path], list[FlowProblem]]:
    given = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    files: list[Path] = []
    problems: list[FlowProblem] = []
    for path in given:
        if path.is_dir():
            try:
                found = flow_files_in(path)
            except (OSError, FlowFileRefused) as exc:
                why = f"cannot read the folder: {exc.strerror or exc}" if isinstance(exc, OSError) else exc
                problems.append(FlowProblem(str(path), None, "", str(why)))
                continue
            if not found:
                problems.append(FlowProblem(str(path), None, "", "no flow files (*.yaml) in this folder"))
            files += found
        elif path.exists():
            files.append(path)
        else:
            problems.append(FlowProblem(str(path), None, "", "no such file or folder"))
    unique = list(dict.fromkeys(files, None))  # the same file given twice is one flow
    return unique, problems


def load_flows(paths: Path | str | Iterable[Path | str] = DEFAULT_FLOW_DIR) -> FlowSet:
    """Every flow of the given files and folders, checked alone and together. Raises ``FlowError``."""
    files, problems = _expand(paths)
    parsed = [_parse_file(path) for path in files]
    good = [p for p in parsed if p.flow is not None]
    for p in parsed:
        problems += p.problems
    flows = [p.flow for p in good if p.flow is not None]
    for i, loc, reason in cross_flow_problems(flows, [p.file for p in good]):
        if i is None:
            if not problems:  # with a broken file, the default may well be in it
                problems.append(FlowProblem(None, None, "", reason))
            continue
        problems.append(good[i].document.problem(loc, reason))
    if not files and not problems:
        problems.append(FlowProblem(None, None, "", "no flow files given"))
    if problems:
        raise FlowError(problems)
    return FlowSet(tuple(flows), tuple(p.file for p in good), tuple(p.document for p in good))
