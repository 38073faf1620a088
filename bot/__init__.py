"""phonebot: a telephony voice bot (Twilio Media Streams, streaming LLM, Google TTS or embedded engines)."""

from importlib import metadata

try:
    __version__ = metadata.version("phonebot")
except metadata.PackageNotFoundError:  # running from a checkout without an install
    __version__ = "0.0.0+unknown"
