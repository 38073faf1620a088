"""``LineConfig``: what the bot says and does on one call.

Rules:
- A call runs on one ``LineConfig`` from start to end; it is frozen, so a flow reload never changes
  a live call. Call-flow files (``bot.flows``) build one per flow, and the flow schema reads every
  default from here (``bot.flows.model``).
- A default lives once, with the component that uses it: ``phrases`` is ``PhraseConfig()`` and
  ``endpointing`` is ``EndpointerConfig()``, except the one thing the line adds to its endpointer: the
  pause it speculates on (``SPECULATION_PAUSE_MS``; a bare endpointer reports no pauses).
- The example store is a flow file (``flows/store.yaml``), never a Python twin of it: the rig and the
  tests load that file (``bot.sim.store_line``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.core.progress import ProgressConfig
from bot.providers.llm.protocol import ChatOptions
from bot.providers.tts.protocol import VoiceOptions
from bot.providers.tts.registry import TtsChoice
from bot.tools.registry import Tool
from media.phrases import PhraseConfig
from media.vad import EndpointerConfig

# The line speculates by default (``LineConfig.speculation``), so its endpointer reports a pause in the
# caller's speech after this much silence (``SpeechPaused``); the answer is prepared from there.
SPECULATION_PAUSE_MS = 200


@dataclass(frozen=True)
class EndCallConfig:
    """The built-in ``end_call`` tool: say ``goodbye`` in full, then hang up."""

    name: str = "end_call"
    description: str = "End the call when the caller is done or says goodbye."
    goodbye: str = "Thank you for calling. Goodbye!"


@dataclass(frozen=True)
class TransferConfig:
    """A built-in ``transfer_call`` tool: say ``say``, then redirect the call to ``number``."""

    number: str
    name: str = "transfer_call"
    description: str = "Transfer the caller to a person when they ask for one."
    say: str = "Let me transfer you now. Please hold."


@dataclass(frozen=True)
class TimeoutConfig:
    silence_reprompt_s: float = 8.0  # the caller silent this long (and the bot idle): reprompt
    reprompt_text: str = "Are you still there?"
    max_reprompts: int = 2  # unanswered reprompts before the goodbye and the hang-up
    no_answer_goodbye: str = "I can't hear you, so I'll hang up now. Please call again. Goodbye."
    max_call_s: float = 900.0
    max_call_goodbye: str = "We've reached the time limit for this call. Thank you for calling, goodbye."


@dataclass(frozen=True)
class DtmfConfig:
    enabled: bool = True  # keypad digits go to the model as a caller message
    finish_key: Literal["#", "*"] = "#"
    timeout_s: float = 5.0  # the digits end this long after the last key
    message: str = "(typed on the keypad: {digits})"  # what the model reads


@dataclass(frozen=True)
class LineConfig:
    name: str
    greeting: str
    system_prompt: str
    tools: tuple[Tool, ...] = ()
    greeting_interruptible: bool = True
    tts_provider: TtsChoice = "auto"  # auto: the server's TTS
    voice: VoiceOptions = field(default_factory=VoiceOptions)
    chat: ChatOptions = field(default_factory=ChatOptions)
    phrases: PhraseConfig = field(default_factory=PhraseConfig)
    endpointing: EndpointerConfig = field(
        default_factory=lambda: EndpointerConfig(pause_ms=SPECULATION_PAUSE_MS)
    )
    # Work started in the end-of-turn silence (from endpointing.pause_ms): "stt" transcribes early,
    # "llm" also starts the model (its answer is held, and tools wait, until the turn is confirmed).
    speculation: Literal["off", "stt", "llm"] = "llm"
    barge_in: bool = True  # caller speech (endpointing.min_speech_ms of it) stops the bot
    filler_delay_s: float = 0.3  # tools still running after this long: say the filler
    filler_text: str = "One moment while I look that up."
    silence_filler_s: float = 1.2  # nothing said this long after the caller finished: say this
    silence_filler_text: str = "One moment."
    progress: ProgressConfig = field(default_factory=ProgressConfig)  # while the answer is still slow
    # The model's whole answer (every request and tool of the turn) must be done this long after it was
    # asked, or the caller hears the apology: 15 s covers a tool round with a slow first token (8 s).
    turn_budget_s: float = 15.0
    apology_text: str = "Sorry, I'm having trouble right now. Could you say that again?"
    transfer_failed_text: str = "Sorry, I couldn't put you through right now. Can I take a message instead?"
    # Said first, instead of the greeting, when a call's stream comes back after the line dropped.
    resume_text: str = "Sorry, the line dropped. Where were we?"
    max_tool_rounds: int = 3
    end_call: EndCallConfig | None = None
    transfers: tuple[TransferConfig, ...] = ()
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    dtmf: DtmfConfig = field(default_factory=DtmfConfig)
    version: str = ""  # of the flow file (its hash), for logs and recordings

    def clip_texts(self) -> list[str]:
        """What the bot says verbatim, synthesized ahead of time (so it plays even if TTS is down)."""
        texts = [
            self.greeting,
            self.apology_text,
            self.silence_filler_text,
            self.filler_text,
            self.resume_text,
        ]
        texts += list(self.progress.texts)
        texts += [t.filler for t in self.tools if t.filler]
        texts += [
            self.timeouts.reprompt_text,
            self.timeouts.no_answer_goodbye,
            self.timeouts.max_call_goodbye,
        ]
        texts += [self.end_call.goodbye] if self.end_call is not None else []
        return (
            texts + [t.say for t in self.transfers] + ([self.transfer_failed_text] if self.transfers else [])
        )
