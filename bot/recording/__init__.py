"""Call recordings (format v1): every call written as a folder of meta, events and audio, and read back.

``CallRecorder`` writes one call into a ``RecordingSink`` handed out by a ``RecordingStore``
(``LocalStore`` today); ``Recording.load`` reads a folder back. Layout and rules: ``bot.recording.format``.
"""

from bot.recording.format import FORMAT_VERSION
from bot.recording.reader import PlayedSegment, Recording, RecordingError
from bot.recording.store import LocalSink, LocalStore, RecordingSink, RecordingStore
from bot.recording.writer import CallRecorder

__all__ = [
    "FORMAT_VERSION",
    "CallRecorder",
    "LocalSink",
    "LocalStore",
    "PlayedSegment",
    "Recording",
    "RecordingError",
    "RecordingSink",
    "RecordingStore",
]
