"""A synthetic human caller: espeak-ng from the ``espeakng-loader`` wheel (library and voice data inside).

Rules:
- Used only by the simulated phone (demo, tests): the caller's voice must differ from the bot's piper
  voice, and must come from a package (nothing downloaded, nothing from the system).
- espeak-ng keeps global state, so one process-wide instance synthesizes under a lock.
- ``speak(text)`` returns PCM16 mono at 8 kHz, what a phone line carries; the resampling carries its
  state across espeak's 20 ms callbacks.
- espeak-ng is GPL-3.0-or-later: it stays in the optional ``offline`` extra, like piper.
"""

from __future__ import annotations

import ctypes
import os
import threading

from media.codec import Resampler

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: samples come to the callback, no sound device
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakVoice:
    """espeak-ng through ctypes; ``rate`` in words per minute, ``voice`` an espeak voice name."""

    _lock = threading.Lock()

    def __init__(self, voice: str = "en-us", rate: int = 160) -> None:
        import espeakng_loader  # in the offline extra

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        data_dir = os.path.dirname(espeakng_loader.get_data_path())
        with self._lock:
            self.sample_rate = int(lib.espeak_Initialize(_SYNCHRONOUS, 20, data_dir.encode(), 0))
            if self.sample_rate <= 0:
                raise RuntimeError("espeak-ng failed to initialise")
        self._voice = voice.encode()
        self._rate = rate
        self._chunks: list[bytes] = []
        self._callback = _CALLBACK(self._on_audio)  # kept referenced: C holds the pointer

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], n: int, _events: object) -> int:
        if n > 0:
            self._chunks.append(ctypes.string_at(wav, n * 2))
        return 0

    def speak(self, text: str) -> bytes:
        """PCM16 mono 8 kHz audio of ``text``."""
        data = text.encode() + b"\0"
        with self._lock:
            lib = self._lib
            lib.espeak_SetVoiceByName(self._voice)
            lib.espeak_SetParameter(1, self._rate, 0)  # espeakRATE, absolute
            lib.espeak_SetSynthCallback(self._callback)
            self._chunks = []
            lib.espeak_Synth(data, len(data), 0, 1, 0, 0, None, None)  # POS_CHARACTER, synchronous
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        resampler = Resampler(self.sample_rate, 8000)
        return b"".join(resampler.convert(chunk) for chunk in chunks)
