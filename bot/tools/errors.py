"""Why a flow's tool declaration cannot become a runnable tool.

Rules:
- ``loc`` is the path inside the tool's declaration, relative to the tool spec (``("function",)``,
  ``("parameters",)``, ``("headers", "Authorization")``), so the flow loader can prefix it with the
  tool's place in the file.
- ``reason`` is one sentence a support team can act on. It never contains a secret value (header
  values come from the environment and are never repeated).
"""

from __future__ import annotations


class ToolSetupError(Exception):
    """A tool declaration that validated but cannot be turned into a ``Tool`` on this server."""

    def __init__(self, loc: tuple[str | int, ...], reason: str) -> None:
        self.loc = loc
        self.reason = reason
        where = ".".join(str(part) for part in loc) or "tool"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[type[ToolSetupError], tuple[tuple[str | int, ...], str]]:
        # The default would call ToolSetupError(message) and fail; keep loc and reason.
        return (type(self), (self.loc, self.reason))
