"""What Google Cloud Text-to-Speech refuses, as plain functions: the TTS emulator answers INVALID_ARGUMENT
with the message of ``Invalid`` wherever one of these raises.

Rules (each with its source; "proto" is googleapis ``google/cloud/texttospeech/v1/cloud_tts.proto`` at
f8291d2 (2026-08-22), the same text as the installed SDK's field docs in
``google/cloud/texttospeech_v1/types/cloud_tts.py``):
- ``speaking_rate`` of ``AudioConfig`` and ``StreamingAudioConfig``: 0 means 1.0, else within
  [0.25, 2.0] (proto lines 456-459 and 562-565; it was [0.25, 4.0] until googleapis 2059f0f, 2025-03-31).
- ``pitch`` within [-20.0, 20.0] and ``volume_gain_db`` within [-96.0, 16.0] (proto ``AudioConfig``).
- Input: exactly one of text, SSML or markup (``SynthesisInput``: "Supplying both or neither returns
  INVALID_ARGUMENT"); at most 5,000 bytes (proto line 360, and "Total bytes per request 5,000" at
  https://docs.cloud.google.com/text-to-speech/quotas). The emulator applies the 5,000 bytes to each
  streamed text as well: on paper, the docs do not say how streamed inputs are counted.
- ``markup`` is for Chirp 3: HD voices only ("may not be used with any other voices", proto
  ``SynthesisInput.markup``).
- ``VoiceSelectionParams.language_code`` is REQUIRED (proto field_behavior). A voice name whose language
  differs from ``language_code`` is refused; the real message, quoted in
  https://github.com/muxable/rtchat/issues/834 and https://github.com/ropensci/googleLanguageR/issues/86:
  "Requested language code 'en' doesn't match the voice 'en-US-Neural2-D''s language code 'en-us'. ..."
- StreamingSynthesize works with Chirp 3: HD voices only
  (https://cloud.google.com/text-to-speech/docs/create-audio-text-streaming); its ``audio_encoding`` is
  one of PCM, ALAW, MULAW, OGG_OPUS (proto ``StreamingAudioConfig``; OGG_OPUS is not produced here).
- ``effects_profile_id`` values are the documented device profiles
  (https://cloud.google.com/text-to-speech/docs/audio-profiles). Only on paper: what the service answers
  to an unknown profile, and whether Chirp 3 HD honours ``telephony-class-application`` and 8 kHz output
  (unverified: settle it with one real request); the emulator accepts both for every voice.
- ``sample_rate_hertz`` 0 means the voice's natural rate (24000 here); the emulator serves 8000..48000.
  The service refuses rates the encoding does not support (proto ``AudioConfig.sample_rate_hertz``); which
  those are is not documented, so this range is the emulator's, not Google's.
"""

from __future__ import annotations

import math
import re

MAX_INPUT_BYTES = 5000
SPEAKING_RATE = (0.25, 2.0)
PITCH = (-20.0, 20.0)
VOLUME_GAIN_DB = (-96.0, 16.0)
DEFAULT_SAMPLE_RATE = 24000
EFFECTS_PROFILES = frozenset({
    "wearable-class-device", "handset-class-device", "headphone-class-device",
    "small-bluetooth-speaker-class-device", "medium-bluetooth-speaker-class-device",
    "large-home-entertainment-class-device", "large-automotive-class-device", "telephony-class-application",
})  # fmt: skip
_VOICE_LANGUAGE = re.compile(r"^([a-z]{2,3}-[A-Za-z]{2,3})-")


class Invalid(Exception):
    """A request the real service rejects with INVALID_ARGUMENT (the message is the reason)."""


def _within(name: str, value: float, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if math.isnan(value) or not low <= value <= high:
        raise Invalid(f"{name} {value} is outside [{low}, {high}]")


def speaking_rate(value: float) -> float:
    """The rate to synthesize at (0, unset, is the voice's own 1.0)."""
    if value == 0:
        return 1.0
    _within("speaking_rate", value, SPEAKING_RATE)
    return value


def pitch(value: float) -> None:
    _within("pitch", value, PITCH)


def volume_gain_db(value: float) -> None:
    _within("volume_gain_db", value, VOLUME_GAIN_DB)


def sample_rate(value: int) -> int:
    rate = value or DEFAULT_SAMPLE_RATE
    if not 8000 <= rate <= 48000:
        raise Invalid(f"sample_rate_hertz {value} is not supported")
    return rate


def is_chirp3_hd(voice_name: str) -> bool:
    return "-Chirp3-HD-" in voice_name


def input_text(*, text: str, ssml: str = "", markup: str = "", voice_name: str = "") -> str:
    """The one input of a request (text, SSML or markup), checked; SSML is returned as is."""
    given = [value for value in (text, ssml, markup) if value]
    if len(given) != 1:
        raise Invalid("Either `input.text` or `input.ssml` must be supplied.")
    if markup and not is_chirp3_hd(voice_name):
        raise Invalid(f"markup input is only supported by Chirp 3: HD voices, not {voice_name!r}")
    size = len(given[0].encode("utf-8"))
    if size > MAX_INPUT_BYTES:
        raise Invalid(f"Input size limit exceeded: {size} bytes, the limit is {MAX_INPUT_BYTES} bytes.")
    return given[0]


def voice(language_code: str, name: str, *, streaming: bool = False) -> None:
    if not language_code:
        raise Invalid("voice.language_code is required.")
    match = _VOICE_LANGUAGE.match(name)
    if match is not None and match.group(1).lower() != language_code.lower():
        own = match.group(1).lower()
        raise Invalid(
            f"Requested language code '{language_code}' doesn't match the voice '{name}''s language code "
            f"'{own}'. Either pick a different voice, or change the requested language code to {own}."
        )
    if streaming and not is_chirp3_hd(name):
        raise Invalid(f"Streaming synthesis is only supported by Chirp 3: HD voices, not {name!r}")


def effects_profiles(ids: list[str]) -> None:
    for profile in ids:
        if profile not in EFFECTS_PROFILES:
            raise Invalid(f"effects_profile_id {profile!r} is not a supported audio profile")
