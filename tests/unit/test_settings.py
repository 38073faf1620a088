"""load_settings: configuration from the environment, one clear line per problem, no secrets shown.

Rules checked here: a missing or malformed setting raises ``SettingsError`` naming the variable and
never its value; names are case-insensitive; optional settings have working defaults.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from bot.settings import Settings, SettingsError, load_settings

TOKEN = "twilio-token-3f9a1c"
API_KEY = "sk-test-openai-7b2e55"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets is visible: drop every variable Settings reads, in any letter case."""
    fields = set(Settings.model_fields)
    for name in list(os.environ):
        if name.lower() in fields:
            monkeypatch.delenv(name)


@pytest.fixture
def required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)


def error_message() -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return str(caught.value)


def test_missing_twilio_auth_token_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    message = error_message()
    assert "TWILIO_AUTH_TOKEN is not set" in message
    assert "OPENAI_API_KEY" not in message
    assert API_KEY not in message
    assert "\n" not in message


def test_every_missing_setting_is_named_in_one_line() -> None:
    message = error_message()
    assert "TWILIO_AUTH_TOKEN is not set" in message
    assert "OPENAI_API_KEY is not set" in message
    assert "\n" not in message


def test_the_error_hides_pydantic_s_own_report() -> None:
    # pydantic's ValidationError text includes input values; it must not ride along as the cause.
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("PORT", "-1"),
        ("PUBLIC_BASE_URL", "ftp://bot.example.com"),
        ("PUBLIC_BASE_URL", "bot.internal.test"),
        ("PUBLIC_BASE_URL", "https:///no-host"),
        ("GOOGLE_TTS_ENDPOINT", "tts.internal.test"),
        ("GOOGLE_TTS_ENDPOINT", "localhost:port"),
        ("GOOGLE_TTS_ENDPOINT", "localhost:99999"),
        ("GOOGLE_TTS_ENDPOINT", "https://texttospeech.googleapis.com:443"),
        ("GOOGLE_TTS_ENDPOINT", "127.0.0.1:50051/path"),
        ("TTS_ENCODING", "wav"),
        ("LOG_LEVEL", "verbose"),
        ("LLM_TEMPERATURE", "3"),
    ],
)
def test_a_malformed_setting_is_named_but_its_value_is_not_shown(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    message = error_message()
    assert message.startswith("configuration error: ")
    assert name in message
    assert value not in message
    assert TOKEN not in message
    assert API_KEY not in message


def test_secrets_never_appear_even_beside_other_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("PORT", "not-a-port")
    monkeypatch.setenv("PUBLIC_BASE_URL", "nonsense")
    monkeypatch.setenv("GOOGLE_TTS_ENDPOINT", "nonsense")
    message = error_message()
    for name in ("PORT", "PUBLIC_BASE_URL", "GOOGLE_TTS_ENDPOINT"):
        assert name in message
    assert TOKEN not in message
    assert API_KEY not in message


def test_secrets_are_hidden_in_the_settings_repr(required: None) -> None:
    settings = load_settings()
    assert TOKEN not in repr(settings)
    assert API_KEY not in repr(settings)
    assert sorted(settings.secrets()) == sorted([TOKEN, API_KEY])


@pytest.mark.parametrize("style", [str.lower, str.upper, str.title], ids=["lower", "upper", "mixed"])
def test_variable_names_are_case_insensitive(
    monkeypatch: pytest.MonkeyPatch, style: Callable[[str], str]
) -> None:
    monkeypatch.setenv(style("twilio_auth_token"), TOKEN)
    monkeypatch.setenv(style("openai_api_key"), API_KEY)
    monkeypatch.setenv(style("port"), "9001")
    settings = load_settings()
    assert settings.twilio_auth_token.get_secret_value() == TOKEN
    assert settings.openai_api_key.get_secret_value() == API_KEY
    assert settings.port == 9001


def test_defaults(required: None) -> None:
    settings = load_settings()
    assert settings.host == "0.0.0.0"
    assert settings.port == 8080
    assert settings.public_base_url is None
    assert settings.openai_base_url is None
    assert settings.google_tts_endpoint is None
    assert settings.llm_model == "gpt-4o-mini"
    assert settings.llm_temperature is None
    assert settings.llm_max_retries == 1
    assert settings.stt_language == "en"
    assert settings.tts_encoding == "mulaw"
    assert settings.tts_streaming is True  # for Chirp 3 HD voices; others are unary anyway
    assert settings.log_level == "info"


def test_well_formed_values_are_accepted(monkeypatch: pytest.MonkeyPatch, required: None) -> None:
    monkeypatch.setenv("PORT", "0")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://bot.example.com:8443/")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9000/v1")
    monkeypatch.setenv("GOOGLE_TTS_ENDPOINT", "[::1]:50051")
    monkeypatch.setenv("TTS_ENCODING", "pcm")
    monkeypatch.setenv("TTS_STREAMING", "false")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("LLM_TEMPERATURE", "0.2")
    settings = load_settings()
    assert settings.port == 0
    assert settings.public_base_url == "https://bot.example.com:8443"  # trailing slash dropped
    assert settings.openai_base_url == "http://127.0.0.1:9000/v1"
    assert settings.google_tts_endpoint == "[::1]:50051"
    assert settings.tts_encoding == "pcm"
    assert settings.tts_streaming is False
    assert settings.log_level.lower() == "debug"
    assert settings.llm_temperature == 0.2


def test_empty_urls_mean_unset(monkeypatch: pytest.MonkeyPatch, required: None) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "")
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    monkeypatch.setenv("GOOGLE_TTS_ENDPOINT", "")
    settings = load_settings()
    assert settings.public_base_url is None
    assert settings.openai_base_url is None
    assert settings.google_tts_endpoint is None
