"""Call-flow files: schema, the YAML loader's messages, rules across flows, routing, ``bot flows check``.

Rules checked here: the shipped ``flows/store.yaml`` is valid and builds the rig's store line; every
mistake in a file gives one ``file:line: path: reason`` message (all of them, in line order); YAML
syntax errors, duplicate keys, aliases and literal header secrets are errors with lines, and a secret
is never repeated; only one flow serves a number, exactly one is the default, names are unique;
routing is an exact ``To`` match, else the default; whatever the YAML, the loader raises
``FlowError`` or returns a flow that builds a ``LineConfig``.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import importlib
import io
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.secret_values import known
from bot.flows import store_tools
from bot.flows.build import build_book
from bot.flows.check import check
from bot.flows.fields import StrictModel
from bot.flows.line import EndCallConfig, LineConfig, TransferConfig
from bot.flows.loader import FlowError, FlowProblem, FlowSet, load_flow, load_flows, parse_flow
from bot.flows.model import Flow
from bot.flows.tool_specs import TOOL_TYPES, FunctionToolSpec, HttpToolSpec, PythonToolSpec
from bot.sim.store_line import store_line
from bot.tools.http_tool import HttpClient
from bot.tools.registry import Tool

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "flows" / "store.yaml"
SHIPPED_TEXT = SHIPPED.read_text(encoding="utf-8")
SHIPPED_DATA: dict[str, Any] = yaml.safe_load(SHIPPED_TEXT)

MINIMAL = """\
name: {name}
default: {default}
numbers: {numbers}
greeting:
  text: Hello.
system_prompt: Be brief.
"""


def minimal(name: str = "other", default: bool = False, numbers: str = '["+15550111"]') -> str:
    return MINIMAL.format(name=name, default=str(default).lower(), numbers=numbers)


def messages(text: str, file: str = "flows/bad.yaml") -> list[str]:
    with pytest.raises(FlowError) as caught:
        parse_flow(text, file)
    return [str(problem) for problem in caught.value.problems]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def python_tool(spec: FunctionToolSpec) -> Tool:
    """A stand-in for the later tool factory: Python tools only, the others are placeholders."""
    if not isinstance(spec, PythonToolSpec):
        return Tool(spec.name, spec.description, {"type": "object", "properties": {}}, _placeholder)
    module, function = spec.function.split(":")
    handler = getattr(importlib.import_module(module), function)
    return Tool(spec.name, spec.description, spec.parameters, handler, spec.timeout_s, spec.filler)


async def _placeholder() -> None:
    return None


def route(flows: FlowSet, to_number: str | None) -> str:
    """The name of the line the server's book (``bot.flows.build``) routes ``to_number`` to."""
    return build_book(flows, env={}, http=HttpClient()).route(to_number).name


# --- the shipped flow ---------------------------------------------------------------------------


def test_the_shipped_flow_is_valid_and_is_the_default() -> None:
    flows = load_flows(REPO / "flows")
    store = flows.default
    assert store.name == "store"
    assert store.numbers == ["+15550100"]  # the emulated phone's To number
    assert route(flows, "+15550100") == store.name
    assert [tool.type for tool in store.tools] == ["python", "python", "end_call", "transfer_call"]
    assert store.transfer_targets == {"front desk": "+15550150"}
    assert flows.files == (str(REPO / "flows" / "store.yaml"),)


def test_the_shipped_flow_builds_todays_built_in_line() -> None:
    built = load_flow(SHIPPED).to_line_config(python_tool)
    today = dataclasses.replace(store_line(), version="")  # built from the file, like serve: its hash
    shared = [f.name for f in dataclasses.fields(LineConfig) if f.name != "tools"]
    assert {n: getattr(built, n) for n in shared} == {n: getattr(today, n) for n in shared}
    declared = {t.name: (t.description, dict(t.parameters), t.timeout_s, t.filler) for t in built.tools}
    for tool in today.tools:
        assert declared[tool.name] == (tool.description, dict(tool.parameters), tool.timeout_s, tool.filler)
    assert set(declared) == {"check_hours", "lookup_order"}  # end_call and transfer_call are built-ins
    assert built.end_call is not None and built.transfers[0].number == "+15550150"


def test_a_flow_that_sets_nothing_has_todays_defaults() -> None:
    flow = parse_flow(minimal(default=True))
    built = flow.to_line_config(python_tool)
    today = LineConfig(name="other", greeting="Hello.", system_prompt="Be brief.")
    assert built == today


def test_the_built_in_tools_default_to_what_they_become() -> None:
    tools = "tools:\n  - type: end_call\n  - type: transfer_call\n    target: desk\n"
    flow = parse_flow(minimal(default=True) + tools + "transfer_targets:\n  desk: '+15550150'\n")
    built = flow.to_line_config(python_tool)
    assert built.end_call == EndCallConfig()
    assert built.transfers == (TransferConfig("+15550150"),)


async def test_the_store_tools_answer_like_the_built_in_ones() -> None:
    builtin = {t.name: t.handler for t in store_line().tools}
    data = store_tools._store_data()
    for day in [*data["hours"], " Monday ", "FRIDAY", "someday", ""]:
        assert await store_tools.check_hours(day) == await builtin["check_hours"](day=day)
    orders = [*data["orders"], "order 1 0 0 1", "#1234", "9999", "", "abc"]
    # The shipped lookup waits for the store's (simulated, slow) order system: all at once.
    shipped = await asyncio.gather(*(store_tools.lookup_order(order) for order in orders))
    assert shipped == [await builtin["lookup_order"](order_id=order) for order in orders]


@given(st.text(max_size=30))
async def test_the_store_tools_agree_on_any_text(text: str) -> None:
    builtin = {t.name: t.handler for t in store_line().tools}
    assert await store_tools.check_hours(text) == await builtin["check_hours"](day=text)
    orders = store_tools._store_data()["orders"]
    assert store_tools.order_answer(orders, text) == await builtin["lookup_order"](order_id=text)


def test_every_field_has_a_description() -> None:
    models: list[type[StrictModel]] = [Flow, *TOOL_TYPES.values()]
    seen: set[type[StrictModel]] = set()
    while models:
        model = models.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name}"
            if isinstance(info.annotation, type) and issubclass(info.annotation, StrictModel):
                models.append(info.annotation)
    assert len(seen) >= 14


# --- one file's messages ------------------------------------------------------------------------

TEN_MISTAKES = """\
name: store
numbers:
  - 555-0100
greeting:
  interruptible: true
system_prompt: Be nice.
llm:
  temperature: 3
voice:
  provider: gogle
  speking_rate: 1.1
endpointing:
  end_silence_ms: -100
tools:
  - type: http
    name: stock
    description: Stock level.
    url: https://api.example.com/stock
    headers:
      Authorization: Bearer sk-live-123
  - type: python
    name: hours
    description: Hours.
    function: store_tools.check_hours
  - type: python
    name: orders
    description: Orders.
    function: bot.flows.store_tools:lookup_order
    timeout_s: -1
  - type: transfer
    target: front desk
"""


def test_ten_mistakes_give_ten_precise_messages() -> None:
    got = messages(TEN_MISTAKES, "flows/store.yaml")
    assert got == [
        "flows/store.yaml:3: numbers[0]: must be an E.164 phone number: '+', country code and number, "
        "no spaces or dashes, like \"+15550100\"; got '555-0100'",
        "flows/store.yaml:4: greeting.text: is required",
        "flows/store.yaml:8: llm.temperature: must be <= 2, got 3",
        "flows/store.yaml:10: voice.provider: must be 'auto', 'google' or 'piper', got 'gogle'",
        "flows/store.yaml:11: voice.speking_rate: unknown field (did you mean 'speaking_rate'?)",
        "flows/store.yaml:13: endpointing.end_silence_ms: must be > 0, got -100",
        "flows/store.yaml:20: tools[0].headers.Authorization: must be an env:VAR_NAME reference (for example "
        "env:STORE_API_KEY); header values come from the server's environment, a secret is never written "
        "in a flow file",
        "flows/store.yaml:24: tools[1].function: must be a dotted path package.module:function, "
        "got 'store_tools.check_hours'",
        "flows/store.yaml:29: tools[2].timeout_s: must be > 0, got -1",
        "flows/store.yaml:30: tools[3].type: must be one of 'http', 'python', 'end_call', 'transfer_call', "
        "got 'transfer'",
    ]
    assert "sk-live" not in "\n".join(got)


def test_a_yaml_syntax_error_has_its_line() -> None:
    text = "name: store\ngreeting:\n  text: hi\n   extra: 1\nsystem_prompt: x\n"
    assert messages(text) == ["flows/bad.yaml:4: YAML syntax error: mapping values are not allowed here"]
    unclosed = 'name: "store\ngreeting: x\n'
    assert messages(unclosed) == [
        "flows/bad.yaml:3: YAML syntax error: found unexpected end of stream "
        "(while scanning a quoted scalar at line 1)"
    ]
    assert messages("name: st\x07ore\n") == [
        "flows/bad.yaml:1: YAML syntax error: character '\\x07' is not allowed in YAML text"
    ]


def test_a_key_written_twice_is_an_error_at_the_second() -> None:
    text = minimal(default=True) + "greeting:\n  text: Hi.\n  text: Hello.\n"
    assert messages(text) == [
        "flows/bad.yaml:7: greeting: duplicate key 'greeting' (first at line 4); write each key once",
        "flows/bad.yaml:9: greeting.text: duplicate key 'text' (first at line 8); write each key once",
    ]


def test_a_literal_header_secret_is_an_error_that_never_repeats_it() -> None:
    secret = "sk-live-4f9a0c77"
    tool = (
        "tools:\n  - type: http\n    name: stock\n    description: Stock.\n    url: https://shop.test/stock\n"
        f"    headers:\n      X-Api-Key: env:STOCK_KEY\n      Authorization: Bearer {secret}\n"
        "      X-Number: 123456\n"
    )
    got = messages(minimal(default=True) + tool)
    assert [m.split(": must be")[0] for m in got] == [
        "flows/bad.yaml:14: tools[0].headers.Authorization",
        "flows/bad.yaml:15: tools[0].headers.X-Number",
    ]
    assert secret not in "\n".join(got) and "123456" not in "\n".join(got)
    ok = parse_flow(minimal(default=True) + tool.split("      Authorization")[0])
    assert isinstance(ok.tools[0], HttpToolSpec)
    assert ok.tools[0].headers == {"X-Api-Key": "env:STOCK_KEY"}


def test_aliases_are_refused() -> None:
    text = "name: &n store\ndefault: true\ngreeting:\n  text: *n\nsystem_prompt: x\n"
    assert messages(text) == [
        "flows/bad.yaml:4: YAML syntax error: aliases (*name) are not allowed: repeat the value"
    ]


def test_yaml_traps_are_closed() -> None:
    text = minimal(default=True, numbers="[+15550100]") + "voice:\n  language: no\n  name: 9:30\n"
    flow = parse_flow(text)
    assert flow.numbers == ["+15550100"]  # unquoted phone numbers are text
    assert (flow.voice.language, flow.voice.name) == ("no", "9:30")  # not false, not 570
    assert messages(minimal(default=True) + "apology: 0100\n") == [
        "flows/bad.yaml:7: apology: must be text, got 100 (write it in quotes)"
    ]


def test_an_empty_or_non_mapping_file() -> None:
    assert messages("# only a comment\n") == [
        "flows/bad.yaml:1: the file is empty: a flow needs name, greeting and system_prompt"
    ]
    assert messages("- a\n- b\n") == ["flows/bad.yaml:1: must be a mapping (key: value lines), got a list"]
    assert messages("name: !!binary aGk=\n" + minimal(default=True).split("\n", 1)[1]) == [
        "flows/bad.yaml:1: name: unsupported tag tag:yaml.org,2002:binary"
    ]


def test_an_unknown_key_names_the_closest_field() -> None:
    tool = "tools:\n  - type: python\n    name: a\n    description: b\n    function: m:f\n    timeout: 3\n"
    assert messages(minimal(default=True) + "greting: Hi.\n" + tool) == [
        "flows/bad.yaml:7: greting: unknown field (did you mean 'greeting'?)",
        "flows/bad.yaml:13: tools[0].timeout: unknown field (did you mean 'timeout_s'?)",
    ]


def test_rules_across_the_fields_of_one_flow() -> None:
    tools = (
        "tools:\n  - type: end_call\n  - type: end_call\n  - type: transfer_call\n    target: boss\n"
        "transfer_targets:\n  front desk: '+15550150'\n"
    )
    assert messages(minimal(numbers="['+15550111', '+15550111']") + tools) == [
        "flows/bad.yaml:3: numbers[1]: +15550111 is listed twice (also numbers[0])",
        "flows/bad.yaml:9: tools[1].name: 'end_call' is already the name of tools[0]",
        "flows/bad.yaml:11: tools[2].target: no transfer target 'boss' (transfer_targets: 'front desk')",
    ]
    assert messages(minimal(numbers="[]")) == [
        "flows/bad.yaml:3: numbers: the flow serves no numbers and is not the default: no call reaches it"
    ]


def test_endpointing_rules_of_the_real_config() -> None:
    text = (
        minimal(default=True)
        + "endpointing:\n  end_silence_ms: 300\n  pause_ms: 300\n  max_utterance_ms: 100\n"
    )
    assert messages(text) == [
        "flows/bad.yaml:9: endpointing.pause_ms: must be < end_silence_ms (300), got 300",
        "flows/bad.yaml:10: endpointing.max_utterance_ms: must be > min_speech_ms (160), got 100",
    ]
    assert messages(minimal(default=True) + "timeouts:\n  max_call_s: .inf\n") == [
        "flows/bad.yaml:8: timeouts.max_call_s: must be a finite number, got inf"
    ]


# --- rules across files, routing, the check command --------------------------------------------


def test_routing_by_to_number_with_fallback_to_the_default(tmp_path: Path) -> None:
    write(tmp_path, "store.yaml", SHIPPED_TEXT)
    write(tmp_path, "returns.yml", minimal(name="returns", numbers="['+15550111', '+442071838750']"))
    write(tmp_path, "notes.txt", "not a flow")
    flows = load_flows(tmp_path)
    assert [flow.name for flow in flows.flows] == ["returns", "store"]
    assert route(flows, "+15550111") == "returns"
    assert route(flows, " +442071838750 ") == "returns"
    assert route(flows, "+15550100") == "store"
    assert route(flows, "+19998887777") == "store"  # unknown number: the default
    assert route(flows, "") == "store"
    assert route(flows, None) == "store"


def test_two_defaults_a_shared_number_and_a_shared_name(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", minimal(name="store", default=True, numbers="['+15550100']"))
    write(tmp_path, "b.yaml", minimal(name="store", default=True, numbers="['+15550111', '+15550100']"))
    with pytest.raises(FlowError) as caught:
        load_flows(tmp_path)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert [str(p) for p in caught.value.problems] == [
        f"{b}:1: name: 'store' is also the name of the flow in {a}",
        f"{b}:3: numbers[1]: +15550100 is also served by flow 'store' ({a})",
        f"{b}:2: default: flow 'store' ({a}) is already the default; only one may be",
    ]


def test_no_default_flow(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", minimal(name="a", numbers="['+15550100']"))
    with pytest.raises(FlowError) as caught:
        load_flows(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        "flows: no flow has default: true; exactly one must (it answers numbers no flow lists)"
    ]


def test_no_default_is_not_claimed_while_a_file_is_broken(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", minimal(name="a"))
    write(tmp_path, "b.yaml", minimal(name="b", default=True) + "voice: {speed: 2}\n")
    with pytest.raises(FlowError) as caught:
        load_flows(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'b.yaml'}:7: voice.speed: unknown field "
        "(allowed: provider, language, name, speaking_rate)"
    ]


def test_a_flow_set_built_in_code_checks_the_same_rules() -> None:
    store = parse_flow(SHIPPED_TEXT)
    other = parse_flow(minimal(name="other", numbers="['+15550100']"))
    with pytest.raises(FlowError) as caught:
        FlowSet((store, other))
    assert caught.value.problems == (
        FlowProblem("<flow>", None, "numbers[0]", "+15550100 is also served by flow 'store' (<flow>)"),
    )
    with pytest.raises(FlowError):
        FlowSet(())
    assert route(FlowSet((store,)), "+1") == store.name


def test_check_prints_every_error_of_every_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", minimal(name="a", default=True) + "llm: {temperature: -1}\n")
    write(tmp_path, "b.yaml", "name: b\ngreeting: [\n")
    write(tmp_path, "c.yaml", TEN_MISTAKES)
    out = io.StringIO()
    assert check([str(tmp_path)], out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == f"{tmp_path / 'a.yaml'}:7: llm.temperature: must be >= 0, got -1"
    assert lines[1].startswith(f"{tmp_path / 'b.yaml'}:3: YAML syntax error: ")
    assert len(lines) == 1 + 1 + 10 + 1
    assert lines[-1] == "12 errors in 3 file(s)"


def test_speaking_rate_is_what_google_accepts(tmp_path: Path) -> None:
    # googleapis google/cloud/texttospeech/v1/cloud_tts.proto (AudioConfig and StreamingAudioConfig):
    # "in the range [0.25, 2.0] ... Any other values < 0.25 or > 2.0 will return an error" (4.0 until
    # 2025-03-31). A flow the service would refuse is refused by ``bot flows check``, at its line.
    write(tmp_path, "fast.yaml", minimal(default=True) + "voice:\n  speaking_rate: 2.5\n")
    out = io.StringIO()
    assert check([str(tmp_path)], out) == 1
    assert (
        out.getvalue().splitlines()[0]
        == f"{tmp_path / 'fast.yaml'}:8: voice.speaking_rate: must be <= 2, got 2.5"
    )
    assert messages(minimal() + "voice:\n  speaking_rate: 0.2\n") == [
        "flows/bad.yaml:8: voice.speaking_rate: must be >= 0.25, got 0.2"
    ]
    for rate in ("0.25", "2.0"):
        assert parse_flow(
            minimal() + f"voice:\n  speaking_rate: {rate}\n", "f.yaml"
        ).voice.speaking_rate == float(rate)


def test_a_voice_name_of_another_language_is_refused_as_google_does() -> None:
    # Google: "Requested language code 'en' doesn't match the voice 'en-US-Neural2-D''s language code
    # 'en-us'" (https://github.com/muxable/rtchat/issues/834); case does not matter.
    voice = "voice:\n  language: en-GB\n  name: en-US-Chirp3-HD-Aoede\n"
    assert messages(minimal() + voice) == [
        "flows/bad.yaml:9: voice.name: the voice en-US-Chirp3-HD-Aoede speaks en-US, not voice.language "
        "en-GB: Google refuses it"
    ]
    same = "voice:\n  language: en-gb\n  name: en-GB-Neural2-B\n"
    assert parse_flow(minimal() + same, "f.yaml").voice.name == "en-GB-Neural2-B"


def test_check_the_shipped_flows_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    out = io.StringIO()
    assert check([], out) == 0
    assert out.getvalue() == "OK: 1 flow: store (default, 1 number)\n"


def test_check_a_missing_file(tmp_path: Path) -> None:
    out = io.StringIO()
    assert check([str(tmp_path / "nope.yaml")], out) == 1
    assert out.getvalue().splitlines() == [
        f"{tmp_path / 'nope.yaml'}: no such file or folder",
        "1 error in 1 file(s)",
    ]


# --- whatever the YAML: FlowError or a flow that builds ------------------------------------------

FIELD_NAMES = sorted({*Flow.model_fields, "text", "type", "timeout_s", "name", "enabled", "headers"})
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["+15550100", "env:KEY", "http", "python", "end_call", "transfer_call", "phrase"]),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=20,
)


def loads_or_fails_cleanly(text: str) -> None:
    try:
        flow = parse_flow(text, "f.yaml")
    except FlowError as exc:
        assert exc.problems and all(p.file == "f.yaml" and p.reason for p in exc.problems)
        return
    flow.to_line_config(python_tool)  # a valid flow never fails later


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_yaml_data_gives_errors_not_exceptions(data: Any) -> None:
    loads_or_fails_cleanly(yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_any_text_gives_errors_not_exceptions(text: str) -> None:
    loads_or_fails_cleanly(text)


SECTIONS = ["llm", "voice", "phrases", "endpointing", "barge_in", "fillers", "timeouts", "dtmf"]


SECTION_FIELDS = {
    name: sorted(type(getattr(parse_flow(SHIPPED_TEXT), name)).model_fields) for name in SECTIONS
}


# Mostly plausible values, so that many mutated flows are valid and must build a LineConfig.
plausible = st.one_of(
    st.integers(min_value=-5, max_value=3000),
    st.floats(min_value=-1, max_value=5),
    st.booleans(),
    st.sampled_from(["off", "stt", "llm", "word", "sentence", "phrase", "#", "*", "google", "piper", "x"]),
    values,
)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(SECTIONS), st.data())
def test_any_values_in_a_section_of_the_shipped_flow(section: str, data: st.DataObject) -> None:
    document = copy.deepcopy(SHIPPED_DATA)
    names = data.draw(st.lists(st.sampled_from(SECTION_FIELDS[section]), min_size=1, max_size=3, unique=True))
    for name in names:
        document[section][name] = data.draw(plausible)
    loads_or_fails_cleanly(yaml.safe_dump(document))


# ---- tool argument schemas (issue 14) -------------------------------------------------------------------

SCHEMA_TOOL = (
    "tools:\n  - type: http\n    name: order\n    description: An order.\n    url: {url}\n    method: GET\n"
    "    parameters:\n      type: object\n      properties:\n        order_id: {{type: {type}}}\n"
)


def test_a_broken_argument_schema_is_a_flow_error_at_its_line() -> None:
    tool = SCHEMA_TOOL.format(url="https://shop.test/order", type="strin")
    (problem,) = messages(minimal(default=True) + tool)
    assert problem.startswith("flows/bad.yaml:13: tools[0].parameters: is not a valid JSON schema at ")
    assert "properties/order_id/type" in problem, problem


def test_an_argument_schema_gets_additional_properties_false_unless_it_says_otherwise() -> None:
    tool = SCHEMA_TOOL.format(url="https://shop.test/order", type="string")
    (spec,) = parse_flow(minimal(default=True) + tool).tools
    assert isinstance(spec, HttpToolSpec) and spec.parameters["additionalProperties"] is False
    allowed = parse_flow(minimal(default=True) + tool + "      additionalProperties: true\n").tools[0]
    assert isinstance(allowed, HttpToolSpec) and allowed.parameters["additionalProperties"] is True


def test_an_argument_named_like_the_urls_fixed_query_is_a_flow_error() -> None:
    tool = SCHEMA_TOOL.format(url="https://shop.test/order?order_id=1&v=2", type="string")
    (problem,) = messages(minimal(default=True) + tool)
    assert problem.startswith("flows/bad.yaml:8: tools[0]: arguments ['order_id'] are already query ")


def test_building_a_book_adds_its_http_header_values_to_the_secret_list(tmp_path: Path) -> None:
    tool = (
        "tools:\n  - type: http\n    name: stock\n    description: Stock.\n    url: https://shop.test/stock\n"
        "    headers:\n      Authorization: env:STOCK_KEY\n      X-Tenant: env:TENANT\n"
    )
    write(tmp_path, "store.yaml", minimal(default=True) + tool)
    key = "Bearer flow-build-key-5e6f7a8b"
    build_book(load_flows(tmp_path), env={"STOCK_KEY": key, "TENANT": "s1"}, http=HttpClient())
    assert {key, "flow-build-key-5e6f7a8b"} <= set(known())
    assert "s1" not in known()  # too short to be a secret: masking it would blank ordinary text
