"""What the tool builders read from a tool's declaration: protocols, so ``bot.tools`` needs no schema.

Rules:
- Each protocol names only the fields its builder reads, all read-only. Any object with them will
  do: the flow file's pydantic declarations (``bot.flows.tool_specs``) match them as they are, and
  ``bot.flows.build`` hands those over, so imports point one way (flows -> tools, never back).
- Nothing here validates: a declaration arrives already checked (``parameters`` a valid JSON schema of
  an object, header values ``env:VAR`` references, ``function`` a ``package.module:function`` path);
  the builders check only what needs the server (its environment, its importable modules).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class FunctionToolDeclaration(Protocol):
    """A tool the model calls with its own arguments: what every ``Tool`` is made of."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def parameters(self) -> Mapping[str, Any]: ...  # JSON schema of the arguments object
    @property
    def timeout_s(self) -> float: ...
    @property
    def filler(self) -> str | None: ...


class HttpToolDeclaration(FunctionToolDeclaration, Protocol):
    """An HTTP request: the model's arguments go to ``url`` with ``method``."""

    @property
    def url(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...  # header name -> env:VAR_NAME


class PythonToolDeclaration(FunctionToolDeclaration, Protocol):
    """An async Python function, named ``package.module:function``."""

    @property
    def function(self) -> str: ...
