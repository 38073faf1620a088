"""load_settings: configuration from the environment, one clear line per problem, no secrets shown.

Rules checked here: a missing or malformed setting raises ``SettingsError`` naming the variable and
never its value; names are case-insensitive; optional settings have working defaults.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from bot.server.settings import Settings, SettingsError, load_settings

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
    assert settings.llm_model == "gpt-6-luna"
    assert settings.stt_model == "gpt-transcribe"
    assert settings.llm_temperature is None
    assert settings.llm_max_retries == 1
    # Separate waits: connecting, the first token (seconds, not milliseconds), then gaps once streaming.
    assert (settings.llm_connect_timeout_s, settings.llm_first_token_timeout_s) == (3.0, 8.0)
    assert settings.llm_stall_timeout_s == 3.0
    assert settings.stt_language == "en"
    assert settings.tts_encoding == "mulaw"
    assert settings.tts_streaming is True  # for Chirp 3 HD voices; others are unary anyway
    assert settings.log_level == "info"


async def test_the_llm_deadlines_reach_the_chat_model(
    monkeypatch: pytest.MonkeyPatch, required: None
) -> None:
    from bot.providers.llm.openai_chat import OpenAIChatModel, StreamDeadlines
    from bot.server.wiring import build_deps

    monkeypatch.setenv("LLM_CONNECT_TIMEOUT_S", "2")
    monkeypatch.setenv("LLM_FIRST_TOKEN_TIMEOUT_S", "12.5")
    monkeypatch.setenv("LLM_STALL_TIMEOUT_S", "6")  # the old name keeps working: now the gap between chunks
    monkeypatch.setenv("STT_PROVIDER", "openai")
    monkeypatch.setenv("TTS_PROVIDER", "google")
    monkeypatch.setenv("GOOGLE_TTS_ENDPOINT", "127.0.0.1:50051")
    monkeypatch.setenv("RECORDINGS_DIR", "")
    deps = build_deps(load_settings(), lines=None)  # type: ignore[arg-type]
    assert isinstance(deps.llm, OpenAIChatModel)
    assert deps.llm.deadlines == StreamDeadlines(connect_s=2.0, first_token_s=12.5, gap_s=6.0)
    await deps.llm.aclose()


@pytest.mark.parametrize(
    "name", ["LLM_CONNECT_TIMEOUT_S", "LLM_FIRST_TOKEN_TIMEOUT_S", "LLM_STALL_TIMEOUT_S"]
)
def test_llm_deadlines_must_be_positive(monkeypatch: pytest.MonkeyPatch, required: None, name: str) -> None:
    monkeypatch.setenv(name, "0")
    with pytest.raises(SettingsError, match=name):
        load_settings()


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


# ---- Twilio's two secrets and the configured account ---------------------------------------------------

KEY_SID = "SK" + "0123456789abcdef" * 2
KEY_SECRET = "api-key-secret-4d1e0b"
ACCOUNT_SID = "AC" + "fedcba9876543210" * 2


def test_an_api_key_comes_with_its_own_secret(monkeypatch: pytest.MonkeyPatch, required: None) -> None:
    monkeypatch.setenv("TWILIO_API_KEY_SID", KEY_SID)
    monkeypatch.setenv("TWILIO_API_KEY_SECRET", KEY_SECRET)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    settings = load_settings()
    assert settings.twilio_api_key_sid == KEY_SID
    assert settings.twilio_api_key_secret is not None
    assert settings.twilio_api_key_secret.get_secret_value() == KEY_SECRET
    assert settings.twilio_account_sid == ACCOUNT_SID
    assert KEY_SECRET not in repr(settings)
    assert sorted(settings.secrets()) == sorted([TOKEN, KEY_SECRET, API_KEY])


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TWILIO_API_KEY_SID": KEY_SID}, "TWILIO_API_KEY_SID is set without TWILIO_API_KEY_SECRET"),
        ({"TWILIO_API_KEY_SECRET": KEY_SECRET}, "TWILIO_API_KEY_SECRET is set without TWILIO_API_KEY_SID"),
        ({"TWILIO_API_KEY_SID": KEY_SID, "TWILIO_API_KEY_SECRET": TOKEN}, "SECRET is the auth token"),
        ({"TWILIO_API_KEY_SID": "SK123", "TWILIO_API_KEY_SECRET": KEY_SECRET}, "TWILIO_API_KEY_SID"),
        ({"TWILIO_API_KEY_SID": ACCOUNT_SID, "TWILIO_API_KEY_SECRET": KEY_SECRET}, "TWILIO_API_KEY_SID"),
        ({"TWILIO_ACCOUNT_SID": "AC/../" + "0" * 28}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": KEY_SID}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_API_KEY_SID": KEY_SID, "TWILIO_API_KEY_SECRET": " "}, "TWILIO_API_KEY_SECRET"),
    ],
    ids=["key_without_secret", "secret_without_key", "secret_is_auth_token", "short_key_sid",
         "account_sid_as_key", "account_sid_with_a_path", "key_sid_as_account", "empty_secret"],
)  # fmt: skip
def test_a_wrong_twilio_credential_setup_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, required: None, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    message = error_message()
    assert named in message
    assert "\n" not in message
    for secret in (TOKEN, KEY_SECRET, API_KEY):
        assert secret not in message


def test_empty_twilio_sids_mean_unset(monkeypatch: pytest.MonkeyPatch, required: None) -> None:
    monkeypatch.setenv("TWILIO_API_KEY_SID", "")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "")
    settings = load_settings()
    assert settings.twilio_api_key_sid is None and settings.twilio_account_sid is None


def test_a_short_calls_token_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, required: None
) -> None:
    short = "callsTok/e4b1+9=Wp3"  # 19 characters: guessable enough not to guard recorded calls
    monkeypatch.setenv("CALLS_TOKEN", short)
    message = error_message()
    assert "CALLS_TOKEN is shorter than 32 characters" in message and short not in message
    monkeypatch.setenv("CALLS_TOKEN", "x" * 32)
    assert load_settings().calls_token is not None


def test_recordings_redact_the_caller_s_number_and_keys_unless_kept(
    monkeypatch: pytest.MonkeyPatch, required: None
) -> None:
    assert load_settings().recording_redacted_fields() == ["from", "digit"]
    monkeypatch.setenv("RECORDING_SENSITIVE_FIELDS", " card_number, ,email")
    assert load_settings().recording_redacted_fields() == ["from", "digit", "card_number", "email"]
    monkeypatch.setenv("RECORDING_KEEP_CALLER_NUMBER_AND_KEYS", "true")
    assert load_settings().recording_redacted_fields() == ["card_number", "email"]
