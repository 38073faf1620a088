"""Endpointer: energy voice-activity detection with an adaptive noise floor, plus end-of-turn.

PCM16 8 kHz audio goes in (``push``), ``SpeechStarted`` / ``SpeechEnded`` events come out. No clocks:
time is *stream time*, the milliseconds of audio pushed since construction or ``reset``.

Theory of operation:
- Pushed audio is re-cut into 20 ms analysis frames (320 bytes); a partial frame waits for more
  audio. So the events never depend on how the audio was chunked, and all event times lie on the
  20 ms grid (durations in the config are effectively rounded up to whole frames).
- A frame is *voiced* when its rms > max(min_rms, noise_floor * threshold_ratio), the energy rule.
  An optional ``VoiceDetector`` (e.g. a neural VAD) decides instead; it sees every 20 ms frame in
  order, with its rms. The noise floor is still tracked (from the detector's unvoiced frames) but
  only the energy rule uses it.
- Noise floor: starts at min_rms / threshold_ratio (the threshold starts at exactly min_rms) and
  follows *unvoiced* frames with an exponential moving average (noise_floor_alpha); voiced frames
  never pull it up, so speech cannot raise its own threshold. One guard: the floor is never below
  the quietest frame of the last ``noise_window_ms``. Speech always has quiet frames between
  words within a couple of seconds; steady noise has none. So a sudden step in background noise
  (say to rms 800) may start one false utterance, but within ``noise_window_ms`` the floor jumps to
  the noise level, the noise becomes unvoiced and the utterance ends: never speech forever. Noise
  that rises slowly is tracked by the average and never counts as speech at all.

State machine:
- QUIET: no speech (``in_speech`` is False). A voiced frame moves to ONSET.
- ONSET: still ``in_speech`` False, nothing emitted yet. We look at the voiced frames of the last
  2 * min_speech_ms. Once they add up to min_speech_ms, speech has started: emit
  ``SpeechStarted(onset_ms)`` where onset_ms is the start of the first voiced frame in that window,
  and move to SPEECH. If the window runs out of voiced frames (a blip shorter than min_speech_ms, a
  click, a cough fragment), go back to QUIET silently.
- SPEECH: ``in_speech`` is True. Voiced frames extend the utterance; short unvoiced gaps between
  words do not end it. After end_silence_ms of *continuous* unvoiced frames, emit
  ``SpeechEnded(onset_ms, end_ms, audio)`` and go to QUIET. end_ms is the end of the last voiced
  frame; the trailing silence is not in the audio.
- Pause (only when ``pause_ms`` > 0): in SPEECH, once the unvoiced run reaches pause_ms, emit
  ``SpeechPaused`` carrying exactly what ``SpeechEnded`` would carry if the silence went on; the
  owner may start work speculatively. A voiced frame after that emits ``SpeechResumed`` (the
  speculation is void); reaching end_silence_ms emits ``SpeechEnded`` as usual. At most one
  ``SpeechPaused`` per unvoiced run.
- Forced end: when an utterance reaches max_utterance_ms (measured from onset_ms), emit
  ``SpeechEnded`` at the end of the last voiced frame and go to QUIET. If the caller keeps talking,
  a new utterance starts through ONSET as usual.
- Audio of an utterance: PCM16 from onset_ms - pre_roll_ms (so the soft start of the first word is
  kept) to end_ms. The pre-roll is clipped at stream time 0 and at the previous utterance's end_ms
  (only matters after a forced end), so consecutive utterances never share audio.
- ``reset`` returns to the freshly constructed state: QUIET, stream time 0, initial noise floor.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields
from typing import Protocol

from media.codec import PCM_FRAME_BYTES, rms

_FRAME_MS = 20
_FRAME_BYTES = PCM_FRAME_BYTES  # 20 ms of PCM16 at 8 kHz
_BYTES_PER_MS = _FRAME_BYTES // _FRAME_MS  # 16


@dataclass(frozen=True)
class EndpointerConfig:
    min_speech_ms: int = 160  # voiced time (within 2 x this window) before speech counts as started
    end_silence_ms: int = 500  # continuous unvoiced time that ends a turn
    pre_roll_ms: int = 200  # audio kept from before the onset, included in the utterance (0 = none)
    max_utterance_ms: int = 30000  # force an end after this long (from onset)
    threshold_ratio: float = 3.0  # speech if frame rms > max(min_rms, noise_floor * ratio)
    min_rms: int = 300
    noise_floor_alpha: float = 0.05  # EMA speed of the noise floor during unvoiced frames, in (0, 1]
    noise_window_ms: int = 2000  # the floor is never below the quietest frame of this window
    pause_ms: int = 0  # emit SpeechPaused after this much silence inside speech (0 = never)

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            zero_ok = field.name in ("pre_roll_ms", "pause_ms")
            minimum_ok = value >= 0 if zero_ok else value > 0
            if not (minimum_ok and math.isfinite(value)):  # also rejects NaN
                bound = ">= 0" if zero_ok else "> 0"
                raise ValueError(f"{field.name} must be {bound}, got {value!r}")
        if self.noise_floor_alpha > 1:
            raise ValueError(f"noise_floor_alpha must be <= 1, got {self.noise_floor_alpha!r}")
        if self.pause_ms and self.pause_ms >= self.end_silence_ms:
            raise ValueError(
                f"pause_ms must be < end_silence_ms, got {self.pause_ms} >= {self.end_silence_ms}"
            )
        if self.max_utterance_ms <= self.min_speech_ms:
            raise ValueError(
                f"max_utterance_ms must be > min_speech_ms, got {self.max_utterance_ms} "
                f"<= {self.min_speech_ms}"
            )


@dataclass(frozen=True)
class SpeechStarted:
    onset_ms: int  # stream time of the start of the first voiced frame


@dataclass(frozen=True)
class SpeechEnded:
    onset_ms: int
    end_ms: int  # stream time of the end of the last voiced frame
    audio: bytes  # PCM16 8 kHz from onset_ms - pre_roll_ms to end_ms


@dataclass(frozen=True)
class SpeechPaused:
    onset_ms: int
    end_ms: int  # as SpeechEnded: the end of the last voiced frame
    audio: bytes  # the audio SpeechEnded will carry if the caller stays silent


@dataclass(frozen=True)
class SpeechResumed:
    at_ms: int  # stream time of the voiced frame that ended the pause


EndpointerEvent = SpeechStarted | SpeechPaused | SpeechResumed | SpeechEnded


class VoiceDetector(Protocol):
    """Decides per 20 ms PCM16 8 kHz frame whether it is speech; may keep state across frames.

    A detector subclasses ``VoiceDetector`` and inherits the defaults below when it has nothing to say.
    """

    # How much later than the speech itself the detector starts saying "voiced" (a model needs a window
    # or two of context). The Endpointer counts that time as speech already heard, so ``min_speech_ms``
    # means the same caller speech whichever detector runs.
    onset_lag_ms: int = 0

    def voiced(self, frame_pcm16: bytes, rms: int) -> bool: ...

    def reset(self) -> None:
        """Forget all state: the next frame starts an unrelated stream."""
        ...

    def close(self) -> None:
        """The call is over: release what the detector holds (a pooled model). Nothing by default."""
        return None


def _frames_for(ms: int) -> int:
    return max(1, -(-ms // _FRAME_MS))  # ceil, at least one frame


class Endpointer:
    """VAD (energy, or ``detector``) + end-of-turn detection over PCM16 8 kHz (see the module docstring)."""

    def __init__(
        self, config: EndpointerConfig = EndpointerConfig(), detector: VoiceDetector | None = None
    ) -> None:
        self.config = config
        self._detector = detector
        lag = detector.onset_lag_ms if detector is not None else 0
        self._min_speech_frames = _frames_for(max(_FRAME_MS, config.min_speech_ms - lag))
        self._onset_window_frames = _frames_for(2 * config.min_speech_ms)
        self._end_silence_frames = _frames_for(config.end_silence_ms)
        self._noise_window_frames = _frames_for(config.noise_window_ms)
        self._pre_roll_bytes = config.pre_roll_ms * _BYTES_PER_MS
        self._pause_frames = _frames_for(config.pause_ms) if config.pause_ms else 0
        self.reset()

    def reset(self) -> None:
        self._partial = bytearray()  # incomplete analysis frame
        self._pushed_bytes = 0
        self._frame_index = 0  # index of the next analysis frame
        self._noise_floor = self.config.min_rms / self.config.threshold_ratio
        # (frame index, rms) with increasing rms: the rolling minimum is at the left.
        self._quietest: deque[tuple[int, int]] = deque()
        self._onset_voiced: deque[int] = deque()  # voiced frame indices in the onset window
        self._in_speech = False
        self._onset_frame = 0
        self._last_voiced_frame = 0
        self._previous_end_byte = 0
        self._paused = False  # a SpeechPaused was emitted for the current unvoiced run
        # Recent audio: _audio[0] is stream byte _audio_base. Trimmed to what a future event needs.
        self._audio = bytearray()
        self._audio_base = 0
        if self._detector is not None:
            self._detector.reset()

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def now_ms(self) -> int:
        return self._pushed_bytes // _BYTES_PER_MS

    @property
    def noise_floor(self) -> float:
        return self._noise_floor

    def push(self, pcm16_frame: bytes) -> list[EndpointerEvent]:
        """Feed PCM16 audio of any length; return the events it completes, in order."""
        self._pushed_bytes += len(pcm16_frame)
        self._partial += pcm16_frame
        events: list[EndpointerEvent] = []
        whole = len(self._partial) - len(self._partial) % _FRAME_BYTES
        for start in range(0, whole, _FRAME_BYTES):
            self._analyse(bytes(self._partial[start : start + _FRAME_BYTES]), events)
        del self._partial[:whole]
        return events

    # --- one analysis frame ----------------------------------------------------------------------

    def _analyse(self, frame: bytes, events: list[EndpointerEvent]) -> None:
        index = self._frame_index
        self._frame_index += 1
        self._audio += frame
        level = rms(frame)
        if self._detector is None:
            voiced = level > max(self.config.min_rms, self._noise_floor * self.config.threshold_ratio)
        else:
            voiced = self._detector.voiced(frame, level)
        self._update_noise_floor(index, level, voiced)

        if self._in_speech:
            silent_frames = index - self._last_voiced_frame
            if voiced:
                self._last_voiced_frame = index
                if self._paused:
                    self._paused = False
                    events.append(SpeechResumed(at_ms=index * _FRAME_MS))
            elif silent_frames >= self._end_silence_frames:
                events.append(self._end_utterance())
            elif self._pause_frames and silent_frames >= self._pause_frames and not self._paused:
                self._paused = True
                ended = self._utterance()
                events.append(SpeechPaused(ended.onset_ms, ended.end_ms, ended.audio))
        else:
            self._track_onset(index, voiced, events)
        if self._in_speech and (index + 1 - self._onset_frame) * _FRAME_MS >= self.config.max_utterance_ms:
            events.append(self._end_utterance())
        self._trim_audio()

    def _update_noise_floor(self, index: int, level: int, voiced: bool) -> None:
        if not voiced:
            self._noise_floor += self.config.noise_floor_alpha * (level - self._noise_floor)
        quietest = self._quietest
        while quietest and quietest[-1][1] >= level:
            quietest.pop()
        quietest.append((index, level))
        if quietest[0][0] <= index - self._noise_window_frames:
            quietest.popleft()
        # Only a full window says anything about the background (the stream may start with speech).
        if index + 1 >= self._noise_window_frames and quietest[0][1] > self._noise_floor:
            self._noise_floor = float(quietest[0][1])

    def _track_onset(self, index: int, voiced: bool, events: list[EndpointerEvent]) -> None:
        window = self._onset_voiced
        while window and window[0] <= index - self._onset_window_frames:
            window.popleft()
        if voiced:
            window.append(index)
        if len(window) >= self._min_speech_frames:
            self._in_speech = True
            self._onset_frame = window[0]
            self._last_voiced_frame = index
            window.clear()
            events.append(SpeechStarted(onset_ms=self._onset_frame * _FRAME_MS))

    def _end_utterance(self) -> SpeechEnded:
        ended = self._utterance()
        self._in_speech = False
        self._paused = False
        self._previous_end_byte = ended.end_ms * _BYTES_PER_MS
        return ended

    def _utterance(self) -> SpeechEnded:
        onset_byte = self._onset_frame * _FRAME_BYTES
        end_byte = (self._last_voiced_frame + 1) * _FRAME_BYTES
        start_byte = max(0, onset_byte - self._pre_roll_bytes, self._previous_end_byte)
        audio = bytes(self._audio[start_byte - self._audio_base : end_byte - self._audio_base])
        return SpeechEnded(
            onset_ms=self._onset_frame * _FRAME_MS, end_ms=end_byte // _BYTES_PER_MS, audio=audio
        )

    def _trim_audio(self) -> None:
        """Drop audio no future event can include: before (earliest possible onset - pre-roll)."""
        if self._in_speech:
            earliest_onset = self._onset_frame
        elif self._onset_voiced:
            earliest_onset = self._onset_voiced[0]
        else:
            earliest_onset = self._frame_index
        keep_from = max(0, earliest_onset * _FRAME_BYTES - self._pre_roll_bytes, self._previous_end_byte)
        if keep_from > self._audio_base:
            del self._audio[: keep_from - self._audio_base]
            self._audio_base = keep_from
