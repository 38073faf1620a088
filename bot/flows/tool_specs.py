"""Tool declarations of a flow file: ``http``, ``python``, and the built-ins ``end_call``, ``transfer_call``.

Rules:
- The ``type`` key chooses the kind (a pydantic discriminated union); each kind forbids the keys of
  the others.
- HTTP header values are ``env:VAR_NAME`` references only: a literal value (a secret in a reviewed
  file) is an error whose message never repeats the value. URLs carry no user or password.
- ``parameters`` is the JSON schema of the arguments object the model sends: ``type: object``, named
  ``properties``, and ``required`` names that exist, and a valid JSON schema (``jsonschema``'s
  ``check_schema``, draft 2020-12), so a broken one is a flow error at its line, not a failure on a
  call. Without ``additionalProperties`` it gets ``additionalProperties: false``: the model may send
  only the declared arguments (the registry enforces the schema before any tool runs).
- An HTTP tool's argument cannot have the name of a query parameter its URL already fixes: for GET
  and DELETE it would be sent twice (``tenant=store1&tenant=store2``), and the service may read
  either.
- These are declarations only: nothing here imports a function or calls a URL (the flow's
  ``tool_factory`` turns them into ``Tool`` objects). ``HttpToolSpec`` and ``PythonToolSpec`` have
  every field of ``bot.tools.declarations``' protocols, which is all the builders read (mypy checks it
  where ``bot.flows.build`` hands them over); ``bot.tools`` never imports this module.
- Defaults are those of what a declaration becomes (``Tool``, ``EndCallConfig``, ``TransferConfig``),
  read from there, never copied.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from bot.flows.fields import Name, PositiveSeconds, StrictModel, Text, matching, shown
from bot.flows.line import EndCallConfig, TransferConfig
from bot.tools.registry import Tool

_TOOL_TIMEOUT_S = Tool.timeout_s  # the dataclass default
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_ENV_REFERENCE = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]*")
_PYTHON_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_URL = re.compile(r"https?://[^\s/?#@]+(/[^\s]*)?")


def _env_reference(value: object) -> str:
    if isinstance(value, str) and _ENV_REFERENCE.fullmatch(value):
        return value
    # Never echo the value: it is probably the secret that must not be in the file.
    raise ValueError(
        "must be an env:VAR_NAME reference (for example env:STORE_API_KEY); header values come from "
        "the server's environment, a secret is never written in a flow file"
    )


def _url(value: str) -> str:
    if not _URL.fullmatch(value):
        raise ValueError(f"must be an http:// or https:// URL without user or password, got {shown(value)}")
    return value


def _object_schema(value: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a tool's arguments: an object with named properties."""
    if value.get("type") != "object":
        raise ValueError(f"must be a JSON schema with type: object, got type {shown(value.get('type'))}")
    properties = value.get("properties", {})
    if not isinstance(properties, dict) or not all(isinstance(p, dict) for p in properties.values()):
        raise ValueError("properties must map each argument name to its JSON schema")
    required = value.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise ValueError("required must be a list of argument names")
    unknown = [name for name in required if name not in properties]
    if unknown:
        raise ValueError(f"required names {unknown} are not in properties")
    try:
        Draft202012Validator.check_schema(value)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "the schema"
        raise ValueError(f"is not a valid JSON schema at {where}: {exc.message[:160]}") from None
    return {**value, "additionalProperties": value.get("additionalProperties", False)}


HeaderName = Annotated[str, AfterValidator(matching(_HEADER_NAME, "an HTTP header name"))]
EnvReference = Annotated[str, BeforeValidator(_env_reference)]
ArgumentsSchema = Annotated[dict[str, Any], AfterValidator(_object_schema)]
PythonPath = Annotated[str, AfterValidator(matching(_PYTHON_PATH, "a dotted path package.module:function"))]


class FunctionToolSpec(StrictModel):
    """What every tool the model calls with its own arguments has (http and python tools)."""

    name: Name = Field(description="Name the model calls the tool by.")
    description: Text = Field(description="What the tool does and when to use it (read by the model).")
    parameters: ArgumentsSchema = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments.",
    )
    timeout_s: PositiveSeconds = Field(
        default=_TOOL_TIMEOUT_S, description="The call gives up after this long."
    )
    filler: Text | None = Field(default=None, description="Said while this tool runs.")


class HttpToolSpec(FunctionToolSpec):
    type: Literal["http"] = Field(description="http: an HTTP request.")
    url: Annotated[str, AfterValidator(_url)] = Field(description="Endpoint; arguments go in the JSON body.")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="POST", description="HTTP method."
    )
    headers: dict[HeaderName, EnvReference] = Field(
        default_factory=dict,
        description="Header name -> env:VAR_NAME (the value is read from the environment).",
    )

    @model_validator(mode="after")
    def _no_argument_in_the_fixed_query(self) -> HttpToolSpec:
        fixed = {name for name, _ in parse_qsl(urlsplit(self.url).query, keep_blank_values=True)}
        clash = sorted(fixed & set(self.parameters.get("properties", {})))
        if clash:
            raise ValueError(
                f"arguments {clash} are already query parameters of the url; a caller's value would be "
                "sent next to the fixed one, rename the argument or drop it from the url"
            )
        return self


class PythonToolSpec(FunctionToolSpec):
    type: Literal["python"] = Field(description="python: an async Python function.")
    function: PythonPath = Field(description="Async function called with the arguments as keywords.")


class EndCallSpec(StrictModel):
    type: Literal["end_call"] = Field(description="end_call: hang up after a goodbye.")
    name: Name = Field(default=EndCallConfig.name, description="Name the model calls the tool by.")
    description: Text = Field(default=EndCallConfig.description, description="Read by the model.")
    goodbye: Text = Field(
        default=EndCallConfig.goodbye, description="Said in full (never interrupted) before hanging up."
    )


class TransferCallSpec(StrictModel):
    type: Literal["transfer_call"] = Field(description="transfer_call: redirect the call to a person.")
    name: Name = Field(default=TransferConfig.name, description="Name the model calls the tool by.")
    description: Text = Field(default=TransferConfig.description, description="Read by the model.")
    say: Text = Field(default=TransferConfig.say, description="Said before transferring.")
    target: Text = Field(description="A name from transfer_targets.")


ToolSpec = HttpToolSpec | PythonToolSpec | EndCallSpec | TransferCallSpec
TOOL_TYPES: dict[str, type[StrictModel]] = {
    "http": HttpToolSpec,
    "python": PythonToolSpec,
    "end_call": EndCallSpec,
    "transfer_call": TransferCallSpec,
}
