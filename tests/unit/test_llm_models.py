"""The model catalogue (``bot.providers.llm.models``), the flows' model check, and the chat request body.

Rules checked here: the shutdown table is exactly the installed SDK's "Deprecated values" (so an SDK
upgrade that announces a date fails here until the table is re-read); near (60 days) is a warning and
the day itself an error; the defaults are current, known and valid with tools; every name we give rules
to is a model the SDK lists; ``bot flows check`` and ``bot serve`` report with the date and file:line;
the body carries ``reasoning_effort`` (lowest by default) and ``temperature`` only as configured.
"""

from __future__ import annotations

import io
import re
import typing
from datetime import date, timedelta
from pathlib import Path

import openai
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from openai.types import audio_model
from openai.types.shared import chat_model, reasoning_effort
from pydantic import SecretStr

from bot.flows.check import check
from bot.flows.loader import FlowError, load_flows
from bot.flows.model_check import check_models
from bot.providers.llm import models
from bot.providers.llm.models import (
    SHUTDOWNS,
    WARN_DAYS,
    chat_family,
    chat_problems,
    lowest_effort,
    shutdown_date,
    shutdown_notice,
)
from bot.providers.llm.openai_chat import OpenAIChatModel
from bot.providers.llm.protocol import ChatOptions, ReasoningEffort
from bot.providers.stt.openai import language_fields
from bot.server.serve import check_models_in_use, start_server
from bot.server.settings import Settings

TODAY = date(2026, 12, 3)
DEFAULTS = Settings.model_fields
LLM_DEFAULT = str(DEFAULTS["llm_model"].default)
STT_DEFAULT = str(DEFAULTS["stt_model"].default)
MESSAGES = [{"role": "user", "content": "Hi"}]
TOOL = {"type": "function", "function": {"name": "check_hours", "parameters": {"type": "object"}}}


def sdk_shutdowns() -> dict[str, date]:
    """Every ``"name", ...: Announced shutdown date: YYYY-MM-DD`` entry of the SDK's model lists."""
    found: dict[str, date] = {}
    for module in (chat_model, audio_model):
        text = Path(module.__file__ or "").read_text(encoding="utf-8")
        docs = text[text.index('"""Deprecated values:') :]
        for entry in re.split(r"\n- ", docs)[1:]:
            entry = " ".join(entry.split())
            day = re.search(r"Announced shutdown date: (\d{4}-\d{2}-\d{2})", entry)
            if day is None:
                continue  # "Not a supported model ID" and the like
            names = re.findall(r'"([^"]+)"', entry[: entry.index("Announced")])
            found.update(dict.fromkeys(names, date.fromisoformat(day.group(1))))
    return found


def test_the_shutdown_table_is_the_installed_sdks() -> None:
    assert sdk_shutdowns() == SHUTDOWNS
    assert SHUTDOWNS["gpt-4o-mini"] == date(2027, 1, 14)
    assert SHUTDOWNS["gpt-4o-mini-transcribe"] == SHUTDOWNS["whisper-1"] == date(2027, 2, 26)
    assert SHUTDOWNS["gpt-5-mini"] == SHUTDOWNS["o3"] == date(2026, 12, 11)


def test_every_model_with_rules_is_one_the_sdk_lists() -> None:
    listed = set(typing.get_args(chat_model.ChatModel))
    assert set(models._FAMILIES) <= listed
    efforts = set(typing.get_args(typing.get_args(reasoning_effort.ReasoningEffort)[0]))
    assert efforts == set(typing.get_args(ReasoningEffort))
    for name in models._FAMILIES:
        family = chat_family(name)
        assert family is not None and set(family.efforts) <= efforts and family.source


def test_the_defaults_are_current_known_and_work_with_tools() -> None:
    assert (LLM_DEFAULT, STT_DEFAULT) == ("gpt-6-luna", "gpt-transcribe")
    assert STT_DEFAULT in typing.get_args(audio_model.AudioModel)
    assert shutdown_date(LLM_DEFAULT) is None and shutdown_date(STT_DEFAULT) is None
    assert lowest_effort(LLM_DEFAULT) == "none"
    assert chat_problems(LLM_DEFAULT, reasoning_effort=None, temperature=None, has_tools=True) == []
    assert chat_problems(LLM_DEFAULT, reasoning_effort=None, temperature=0.3, has_tools=True) == []


@pytest.mark.parametrize(
    ("days_left", "level"),
    [(WARN_DAYS + 1, None), (WARN_DAYS, "warning"), (1, "warning"), (0, "error"), (-30, "error")],
)
def test_shutdown_notice_boundaries(days_left: int, level: str | None) -> None:
    today = date(2027, 1, 14) - timedelta(days=days_left)
    notice = shutdown_notice("gpt-4o-mini", today)
    assert (notice.level if notice else None) == level
    if notice is not None:
        assert "2027-01-14" in notice.reason and models.DEPRECATIONS_URL in notice.reason


def test_shutdown_dates_of_snapshots_and_unknown_models() -> None:
    assert shutdown_date("gpt-4o-mini-2024-07-18") == date(2027, 1, 14)
    assert shutdown_date(" gpt-4o-mini ") == date(2027, 1, 14)
    assert shutdown_date("gpt-6-luna") is shutdown_date("local") is None
    assert shutdown_notice("local", TODAY) is None


@given(st.text(max_size=30))
def test_anything_unknown_has_no_rules_and_no_effort(name: str) -> None:
    if chat_family(name) is None:
        assert lowest_effort(name) is None
        assert chat_problems(name, reasoning_effort="max", temperature=2.0, has_tools=True) == []


@pytest.mark.parametrize(
    ("model", "lowest"),
    [("gpt-6-luna", "none"), ("gpt-6-luna-2026-09-22", "none"), ("gpt-5.4-mini", "none"),
     ("gpt-6-astra", "low"), ("gpt-5-mini", "minimal"), ("o4-mini", "low"), ("gpt-4o", None),
     ("local", None)],
)  # fmt: skip
def test_lowest_effort(model: str, lowest: str | None) -> None:
    assert lowest_effort(model) == lowest


@pytest.mark.parametrize(
    ("model", "effort", "temperature", "tools", "fields"),
    [
        ("gpt-6-luna", "minimal", None, False, ["reasoning_effort"]),  # not on gpt-5.6+
        ("gpt-6-luna", "max", None, False, ["reasoning_effort"]),  # Responses API only
        ("gpt-6-luna", "low", None, False, []),
        ("gpt-6-luna", "low", 0.5, False, ["temperature"]),  # a temperature only at none
        ("gpt-6-luna", "low", 1.0, False, []),  # the default is always accepted
        ("gpt-6-luna", "low", None, True, ["reasoning_effort"]),  # tools need none
        ("gpt-6-luna", "none", 0.0, True, []),
        ("gpt-5.1", "xhigh", None, False, ["reasoning_effort"]),
        ("gpt-4o", "low", None, False, ["reasoning_effort"]),  # not a reasoning model
        ("gpt-4o", None, 0.2, True, []),
        ("gpt-6-astra", None, None, True, ["tools"]),  # no function tools on chat completions
        ("gpt-6-astra", "none", 0.3, False, ["reasoning_effort", "temperature"]),
        ("gpt-5-mini", None, 0.3, False, ["temperature"]),
    ],
)
def test_chat_problems(
    model: str, effort: str | None, temperature: float | None, tools: bool, fields: list[str]
) -> None:
    problems = chat_problems(model, reasoning_effort=effort, temperature=temperature, has_tools=tools)
    assert [p.field for p in problems] == fields
    assert all(model in p.reason for p in problems)


# ---- the request body -----------------------------------------------------------------------------------


def body(
    model: str, options: ChatOptions | None = None, *, temperature: float | None = None
) -> dict[str, object]:
    chat = OpenAIChatModel(openai.AsyncOpenAI(api_key="x", base_url="http://127.0.0.1:9/v1"), model=model)
    options = options or ChatOptions()
    sent = options.temperature if options.temperature is not None else temperature
    return chat._body(MESSAGES, [TOOL], options, sent)


def test_body_sends_the_lowest_effort_and_no_temperature_by_default() -> None:
    sent = body("gpt-6-luna")
    assert sent["reasoning_effort"] == "none" and "temperature" not in sent and "max_tokens" not in sent
    assert body("gpt-6-astra")["reasoning_effort"] == "low"


def test_body_sends_no_effort_to_models_that_do_not_reason_or_that_we_do_not_know() -> None:
    assert "reasoning_effort" not in body("gpt-4o")
    assert "reasoning_effort" not in body("local")  # a local OpenAI-compatible server's model


def test_body_takes_the_flows_settings() -> None:
    sent = body("gpt-4o", ChatOptions(model="gpt-5.4-mini", temperature=0.0, reasoning_effort="low"))
    assert (sent["model"], sent["temperature"], sent["reasoning_effort"]) == ("gpt-5.4-mini", 0.0, "low")
    assert body("gpt-6-luna", temperature=0.7)["temperature"] == 0.7


# ---- the transcription language field ---------------------------------------------------------------


def test_language_field_per_transcription_model() -> None:
    assert language_fields("gpt-transcribe", "en") == (None, ["en"])
    assert language_fields("gpt-4o-transcribe", "en") == ("en", None)
    assert language_fields("gpt-transcribe", None) == language_fields("whisper-1", "") == (None, None)


# ---- flows check and bot serve -------------------------------------------------------------------------


FLOW = """\
name: store
default: true
greeting:
  text: Hello.
system_prompt: Be brief.
llm:
{llm}tools:
  - type: end_call
    name: end_call
    description: End the call.
"""


def write_flow(folder: Path, llm: str) -> Path:
    path = folder / "store.yaml"
    path.write_text(FLOW.format(llm=llm), encoding="utf-8")
    return path


def run_check(path: Path, today: date, **env: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = check([str(path)], out, env=env, today=today)
    return status, out.getvalue().splitlines()


def test_check_warns_with_the_date_at_the_flows_line(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "  model: gpt-4o-mini\n")
    status, lines = run_check(path, date(2026, 12, 3))
    assert status == 0
    assert lines[0].startswith(
        f"{path}:7: llm.model: warning: gpt-4o-mini shuts down on 2027-01-14 (in 42 days)"
    )
    assert lines[1] == "OK: 1 flow: store (default, 0 numbers); 1 warning"
    assert run_check(path, date(2026, 11, 14)) == (0, ["OK: 1 flow: store (default, 0 numbers)"])


def test_check_fails_loudly_once_the_model_is_shut_down(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "  model: gpt-4o-mini\n")
    status, lines = run_check(path, date(2027, 1, 14))
    assert status == 1
    assert lines[0].startswith(f"{path}:7: llm.model: gpt-4o-mini was shut down by OpenAI on 2027-01-14")
    assert lines[-1] == "1 error in 1 file(s)"


def test_check_reports_the_servers_models_from_the_environment(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "  max_tool_rounds: 2\n")
    status, lines = run_check(path, TODAY, LLM_MODEL="gpt-5-mini", STT_MODEL="whisper-1")
    assert status == 0
    assert lines[0].startswith("flows: warning: LLM_MODEL: gpt-5-mini shuts down on 2026-12-11")
    status, lines = run_check(path, date(2027, 2, 26), STT_MODEL="whisper-1")
    assert status == 1
    assert lines[0].startswith("flows: STT_MODEL: whisper-1 was shut down by OpenAI on 2027-02-26")


def test_check_rejects_settings_the_model_would_refuse(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "  reasoning_effort: low\n  temperature: 0.4\n")
    status, lines = run_check(path, TODAY)
    assert status == 1
    assert lines == [
        f"{path}:7: llm.reasoning_effort: gpt-6-luna rejects function tools with reasoning on "
        "/v1/chat/completions: use none (the server's LLM_MODEL)",
        f"{path}:8: llm.temperature: gpt-6-luna accepts a temperature only with reasoning_effort none "
        "(the server's LLM_MODEL)",
        "2 errors in 1 file(s)",
    ]
    # The same flow on a server whose model does not reason: only the effort is wrong.
    status, lines = run_check(path, TODAY, LLM_MODEL="gpt-4.1")
    assert lines[-2:] == [
        f"{path}:7: llm.reasoning_effort: gpt-4.1 does not reason: it accepts no reasoning_effort "
        "(the server's LLM_MODEL)",
        "1 error in 1 file(s)",
    ]


def test_check_points_at_the_model_when_the_flows_own_model_refuses_tools(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "  model: gpt-6-astra\n")
    report = check_models(load_flows(path), llm_model=LLM_DEFAULT, stt_model=None, today=TODAY)
    assert [str(p) for p in report.errors] == [
        f"{path}:7: llm.model: gpt-6-astra rejects function tools on /v1/chat/completions (the bot's API)"
    ]


def test_serve_logs_shutdowns_and_refuses_rejected_settings(tmp_path: Path) -> None:
    settings = Settings(
        twilio_auth_token=SecretStr("t"),
        openai_base_url="http://127.0.0.1:9/v1",
        llm_model="gpt-4o-mini",
        stt_provider="openai",
        stt_model="gpt-4o-mini-transcribe",
    )
    flows = load_flows(write_flow(tmp_path, "  model: gpt-5-mini\n"))
    with structlog.testing.capture_logs() as logs:
        check_models_in_use(flows, settings, today=date(2026, 12, 29))
    found = {(entry["log_level"], entry["event"], entry["problem"].split(" (")[0]) for entry in logs}
    gone = (
        "was shut down by OpenAI on 2026-12-11: every request to it fails, so every turn would be the apology"
    )
    near = "model_shutdown_near"
    flow = f"{tmp_path / 'store.yaml'}:7: llm.model"
    assert found == {
        ("warning", near, "flows: LLM_MODEL: gpt-4o-mini shuts down on 2027-01-14"),
        ("warning", near, "flows: STT_MODEL: gpt-4o-mini-transcribe shuts down on 2027-02-26"),
        ("error", "model_shut_down", f"{flow}: gpt-5-mini {gone}; pick a current model"),
    }
    luna = settings.model_copy(update={"llm_model": "gpt-6-luna"})
    with pytest.raises(FlowError, match="reasoning_effort"):
        check_models_in_use(load_flows(write_flow(tmp_path, "  reasoning_effort: high\n")), luna, today=TODAY)


@given(st.sampled_from(sorted(SHUTDOWNS)), st.dates(date(2024, 1, 1), date(2028, 12, 31)))
def test_shutdown_notice_levels_follow_the_days_left(model: str, today: date) -> None:
    left = (SHUTDOWNS[model] - today).days
    notice = shutdown_notice(model, today)
    expected = None if left > WARN_DAYS else "warning" if left > 0 else "error"
    assert (notice.level if notice else None) == expected
    assert notice is None or SHUTDOWNS[model].isoformat() in notice.reason


def test_an_effort_the_api_does_not_define_is_a_schema_error_at_its_line(tmp_path: Path) -> None:
    status, lines = run_check(write_flow(tmp_path, "  reasoning_effort: turbo\n"), TODAY)
    assert status == 1
    assert lines[0] == (
        f"{tmp_path / 'store.yaml'}:7: llm.reasoning_effort: must be 'none', 'minimal', 'low', 'medium', "
        "'high', 'xhigh' or 'max', got 'turbo'"
    )


async def test_start_server_refuses_a_flow_whose_settings_the_model_refuses(tmp_path: Path) -> None:
    write_flow(tmp_path, "  model: gpt-6-luna\n  reasoning_effort: low\n")
    settings = Settings(
        twilio_auth_token=SecretStr("t"),
        openai_base_url="http://127.0.0.1:9/v1",
        flows_path=str(tmp_path),
        port=0,
    )
    with pytest.raises(FlowError) as caught:
        await start_server(settings)  # before any provider is built or any port opened
    assert [p.path for p in caught.value.problems] == ["llm.reasoning_effort"]
