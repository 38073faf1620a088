"""A ``python`` tool declaration (a flow file's) -> a runnable ``Tool`` running the named async function.

Rules:
- The declaration is read through ``bot.tools.declarations.PythonToolDeclaration``: this module never
  imports the flow schema (``bot.flows.build`` hands its declarations over).
- ``function`` is ``package.module:function``; the module is imported when the tool is built (at
  flow load), so a typo, a missing module or an import that fails is a ``ToolSetupError`` at
  ``("function",)`` before any call, never a failure in the middle of a call.
- The function must be ``async def``: it runs on the call's event loop, and a blocking function
  would stall the audio of every call.
- Its signature must match the declared arguments: every property of ``parameters`` can be passed
  as a keyword (unless it takes ``**kwargs``), and every argument it needs without a default is a
  property. Otherwise ``ToolSetupError`` at ``("parameters",)`` naming the argument.
- The function itself is the handler: ``ToolRegistry`` checks the model's arguments against
  ``parameters`` (unknown keys, types, patterns) before calling it, binds them to it and turns its
  exceptions and timeouts into results for the model.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from bot.tools.declarations import PythonToolDeclaration
from bot.tools.errors import ToolSetupError
from bot.tools.registry import Tool

_DETAIL_MAX_CHARS = 120
_FUNCTION_LOC: tuple[str] = ("function",)
_PARAMETERS_LOC: tuple[str] = ("parameters",)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_MAX_CHARS else text[: _DETAIL_MAX_CHARS - 3] + "..."


def _is_module_or_parent(missing: str | None, module_name: str) -> bool:
    """Whether a ModuleNotFoundError is about the named module itself (not one it imports)."""
    if missing is None:
        return False
    return module_name == missing or module_name.startswith(missing + ".")


def _import_function(path: str) -> Callable[..., Any]:
    module_name, _, function_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _is_module_or_parent(exc.name, module_name):
            raise ToolSetupError(
                _FUNCTION_LOC,
                f"module {module_name} not found (no module named {exc.name}); check the spelling and "
                "that the package is installed on the server",
            ) from exc
        raise ToolSetupError(
            _FUNCTION_LOC,
            f"importing module {module_name} raised ModuleNotFoundError: {_short(str(exc))}",
        ) from exc
    except Exception as exc:  # anything the module's own code raises while it is imported
        raise ToolSetupError(
            _FUNCTION_LOC,
            f"importing module {module_name} raised {type(exc).__name__}: {_short(str(exc))}",
        ) from exc
    try:
        function = getattr(module, function_name)
    except AttributeError as exc:
        raise ToolSetupError(
            _FUNCTION_LOC, f"module {module_name} has no function named {function_name}"
        ) from exc
    if not inspect.iscoroutinefunction(function):
        raise ToolSetupError(
            _FUNCTION_LOC,
            f"{path} must be an async function (async def), got {type(function).__name__}",
        )
    result: Callable[..., Any] = function
    return result


def _check_signature(path: str, function: Callable[..., Any], parameters: Mapping[str, Any]) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as exc:
        raise ToolSetupError(
            _FUNCTION_LOC, f"the signature of {path} cannot be read ({type(exc).__name__})"
        ) from exc
    properties: Mapping[str, Any] = parameters.get("properties", {})
    kind = inspect.Parameter
    takes_any_keyword = any(p.kind is kind.VAR_KEYWORD for p in signature.parameters.values())
    keyword_names = {
        name
        for name, p in signature.parameters.items()
        if p.kind in (kind.POSITIONAL_OR_KEYWORD, kind.KEYWORD_ONLY)
    }
    for name in properties:
        if name not in keyword_names and not takes_any_keyword:
            raise ToolSetupError(
                _PARAMETERS_LOC,
                f"argument {name!r} is declared in parameters but {path} has no keyword argument "
                f"named {name!r}; rename it or add it to the function",
            )
    for name, p in signature.parameters.items():
        if p.default is not kind.empty or p.kind in (kind.VAR_POSITIONAL, kind.VAR_KEYWORD):
            continue
        if p.kind is kind.POSITIONAL_ONLY:
            raise ToolSetupError(
                _PARAMETERS_LOC,
                f"{path} needs the positional-only argument {name!r}, but tools are called with keywords",
            )
        if name not in properties:
            raise ToolSetupError(
                _PARAMETERS_LOC,
                f"{path} needs the argument {name!r}, which is not declared in parameters.properties",
            )


def python_tool(spec: PythonToolDeclaration) -> Tool:
    """Import the declared async function and check it against the declared arguments."""
    function = _import_function(spec.function)
    _check_signature(spec.function, function, spec.parameters)
    return Tool(
        name=spec.name,
        description=spec.description,
        parameters=spec.parameters,
        handler=function,
        timeout_s=spec.timeout_s,
        filler=spec.filler,
    )
