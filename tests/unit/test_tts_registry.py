"""bot.providers.tts.registry: one table of TTS engine names, and every place that takes a name validates
against it."""

from __future__ import annotations

import dataclasses
from typing import get_args, get_type_hints

import pytest
from pydantic import SecretStr, ValidationError

from bot.flows.line import LineConfig
from bot.flows.model import VoiceSettings
from bot.providers.tts.registry import ENGINES, TTS_ENGINES, TtsChoice, auto_engine
from bot.server.settings import Settings


def settings(**values: object) -> Settings:
    base: dict[str, object] = {"twilio_auth_token": SecretStr("token"), "openai_api_key": SecretStr("sk")}
    return Settings(**{**base, **values})  # type: ignore[arg-type]


def test_the_table_covers_every_engine_name() -> None:
    assert set(ENGINES) == set(TTS_ENGINES) == {"google", "piper"}
    assert get_args(TtsChoice) == ("auto", *TTS_ENGINES)  # typing flattens the nested Literal


def test_settings_the_flow_schema_and_the_line_take_the_same_names() -> None:
    assert Settings.model_fields["tts_provider"].annotation == TtsChoice
    assert VoiceSettings.model_fields["provider"].annotation == TtsChoice
    line_field = {f.name: f for f in dataclasses.fields(LineConfig)}["tts_provider"]
    assert get_type_hints(LineConfig)[line_field.name] == TtsChoice


@pytest.mark.parametrize("name", TTS_ENGINES)
def test_every_engine_name_is_accepted(name: str) -> None:
    assert settings(tts_provider=name).tts_provider == name
    assert VoiceSettings(provider=name).provider == name  # type: ignore[arg-type]


def test_an_unknown_engine_is_refused_with_the_list_of_names() -> None:
    with pytest.raises(ValidationError, match=r"'auto', 'google' or 'piper'"):
        settings(tts_provider="polly")
    with pytest.raises(ValidationError, match=r"'auto', 'google' or 'piper'"):
        VoiceSettings(provider="polly")  # type: ignore[arg-type]


def test_auto_is_google_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    assert auto_engine(settings()) == "piper"
    assert auto_engine(settings(google_tts_endpoint="127.0.0.1:5")) == "google"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/secrets/tts.json")
    assert auto_engine(settings()) == "google"


def test_only_piper_needs_an_extra() -> None:
    assert {name: engine.module for name, engine in ENGINES.items()} == {"google": None, "piper": "piper"}
