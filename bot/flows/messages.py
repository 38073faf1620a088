"""Wording of flow-file errors: pydantic error details -> a field path and a reason a person can act on.

Rules:
- Paths read like the file: ``tools[2].timeout_s``, ``transfer_targets['front desk']``; the tool type
  pydantic adds to a ``loc`` (``tools, 2, "http", ...``) is dropped because the file has no such key.
- Reasons say what is allowed, then what was found: ``must be > 0, got -1``; an unknown key names
  the closest allowed one. Nothing under ``headers`` repeats its value (it may be a secret).
- Anything not worded here falls back to pydantic's own message (a validator's ``ValueError`` text).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from bot.flows.fields import shown
from bot.flows.model import Flow, Loc
from bot.flows.tool_specs import TOOL_TYPES

_SIMPLE_NAME = re.compile(r"[A-Za-z0-9_-]+")


def display_path(loc: Loc) -> str:
    """``("tools", 2, "timeout_s")`` -> ``tools[2].timeout_s``."""
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_NAME.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def without_tag(loc: Loc) -> Loc:
    """Pydantic names the chosen tool type in the loc (``tools, 2, "http", ...``); the file does not."""
    if len(loc) >= 3 and loc[0] == "tools" and isinstance(loc[1], int) and loc[2] in TOOL_TYPES:
        return loc[:2] + loc[3:]
    return loc


def _number(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def reason_for(err: ErrorDetails, loc: Loc) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    got = "" if "headers" in loc else f", got {shown(err.get('input'))}"
    quotable = isinstance(err.get("input"), int | float) and "headers" not in loc
    bounds = {
        "greater_than": (">", "gt"),
        "greater_than_equal": (">=", "ge"),
        "less_than": ("<", "lt"),
        "less_than_equal": ("<=", "le"),
    }
    if kind in bounds:
        sign, key = bounds[kind]
        return f"must be {sign} {_number(ctx[key])}{got}"
    simple = {
        "missing": "is required",
        "string_too_short": "must not be empty",
        "string_type": f"must be text{got}" + (" (write it in quotes)" if quotable else ""),
        "int_type": f"must be a whole number{got}",
        "int_parsing": f"must be a whole number{got}",
        "int_from_float": f"must be a whole number{got}",
        "float_type": f"must be a number{got}",
        "float_parsing": f"must be a number{got}",
        "finite_number": f"must be a finite number{got}",
        "bool_type": f"must be true or false{got}",
        "bool_parsing": f"must be true or false{got}",
        "dict_type": f"must be a mapping (key: value lines){got}",
        "model_type": f"must be a mapping (key: value lines){got}",
        "model_attributes_type": f"must be a mapping (key: value lines){got}",
        "list_type": f"must be a list (- item lines){got}",
    }
    if kind in simple:
        return ("key " if "[key]" in loc else "") + simple[kind]
    if kind in ("literal_error", "enum"):
        return f"must be {ctx['expected']}{got}"
    if kind == "union_tag_invalid":
        return f"must be one of {ctx['expected_tags']}, got {shown(ctx['tag'])}"
    if kind == "union_tag_not_found":
        return f"is required: one of {', '.join(map(repr, TOOL_TYPES))}"
    if kind == "extra_forbidden":
        allowed = field_names_at(err["loc"][:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(allowed)
        return f"unknown field ({hint})"
    message = err["msg"].removeprefix("Value error, ")
    return ("key " if "[key]" in loc else "") + message


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _step(annotation: Any, part: str | int) -> Any:
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part) if isinstance(part, str) else None
        return None if field is None else field.annotation
    if origin is list and isinstance(part, int):
        return typing.get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return typing.get_args(annotation)[1]
    if origin in (typing.Union, types.UnionType) and isinstance(part, str):
        return TOOL_TYPES.get(part)  # a discriminated tool: the loc names its type
    return None


def field_names_at(loc: Sequence[str | int]) -> tuple[str, ...]:
    """Field names of the model at a pydantic error ``loc`` (union tags included), or ()."""
    annotation: Any = Flow
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return ()
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return tuple(annotation.model_fields)
    return ()
