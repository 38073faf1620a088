"""The call-flow file schema: what the bot says and does on the numbers one flow serves.

Rules:
- Every section is a ``StrictModel`` (``bot.flows.fields``): unknown keys, infinities and NaN are
  errors and a built flow is frozen. Tools are declared in ``bot.flows.tool_specs``.
- Defaults are read from the components that own them (``LineConfig``, and through it
  ``PhraseConfig``, ``EndpointerConfig`` and ``ProgressConfig``; ``TimeoutConfig``, ``DtmfConfig``;
  the built-in tools' in ``bot.flows.tool_specs``), never copied, so a flow that sets nothing runs
  like a bare ``LineConfig``. LLM model, temperature, voice language and name left unset mean "the
  server's setting"; an unset reasoning effort is the lowest the model accepts
  (``bot.providers.llm.models``).
- Rules across fields of one flow (unique numbers and tool names, known transfer targets, a flow
  some call can reach) run once every field is valid; they raise one ``flow_rules`` error whose
  ``ctx["problems"]`` lists ``(loc, reason)`` pairs, so the loader can point each at its own line.
- A valid ``Flow`` always builds a ``LineConfig`` (``to_line_config``): the endpointing section is
  checked by constructing the real ``EndpointerConfig``. HTTP and Python tool objects come from the
  caller's ``tool_factory``; this module never imports or calls anything a flow names. The built-in
  telephony tools become ``EndCallConfig`` / ``TransferConfig`` (the call builds their handlers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bot.core.progress import ProgressConfig
from bot.flows.fields import Name, PhoneNumber, PositiveSeconds, StrictModel, Text
from bot.flows.line import DtmfConfig, EndCallConfig, LineConfig, TimeoutConfig, TransferConfig
from bot.flows.tool_specs import (
    EndCallSpec,
    FunctionToolSpec,
    ToolSpec,
    TransferCallSpec,
)
from bot.providers.llm.protocol import ChatOptions, ReasoningEffort
from bot.providers.tts.protocol import VoiceOptions
from bot.providers.tts.registry import TtsChoice
from bot.providers.voices import voice_language
from bot.tools.registry import Tool
from media.phrases import PhraseConfig, PhraseStrategy
from media.vad import EndpointerConfig

# A line with placeholder texts and nothing else set: the source of every default below.
_LINE = LineConfig(name="defaults", greeting="-", system_prompt="-")
_TIMEOUTS = TimeoutConfig()
_DTMF = DtmfConfig()
ToolFactory = Callable[[FunctionToolSpec], Tool]
Loc = tuple[str | int, ...]


class Greeting(StrictModel):
    text: Text = Field(description="Said as soon as the call is answered.")
    interruptible: bool = Field(
        default=_LINE.greeting_interruptible, description="Whether the caller's speech stops the greeting."
    )


class LlmSettings(StrictModel):
    model: Text | None = Field(default=None, description="Chat model name; unset: the server's LLM_MODEL.")
    temperature: float | None = Field(
        default=None,
        ge=0,
        le=2,
        description="Sampling temperature, sent only when set (here or LLM_TEMPERATURE); reasoning models "
        "accept it only with reasoning_effort none.",
    )
    reasoning_effort: ReasoningEffort | None = Field(
        default=None,
        description="How long the model may reason before it answers; unset: the lowest the model accepts "
        "(none for gpt-6-luna), as a caller waits in silence meanwhile.",
    )
    max_tool_rounds: int = Field(
        default=_LINE.max_tool_rounds, ge=1, description="Tool calls the model may chain in one answer."
    )
    first_token_timeout_s: PositiveSeconds | None = Field(
        default=None,
        description="Wait for each request's first token; unset: the server's LLM_FIRST_TOKEN_TIMEOUT_S.",
    )
    turn_budget_s: PositiveSeconds = Field(
        default=_LINE.turn_budget_s,
        description="The model's whole answer (every request and tool) must be done by then, or: apology.",
    )


class VoiceSettings(StrictModel):
    provider: TtsChoice = Field(
        default=_LINE.tts_provider,
        description="Text-to-speech engine; auto: the server's choice (TTS_PROVIDER).",
    )
    language: Text | None = Field(
        default=None, description="Voice language (Google), like en-GB; unset: the server's TTS_LANGUAGE."
    )
    name: Text | None = Field(default=None, description="Voice name (Google); unset: the server's TTS_VOICE.")
    # Google's range for AudioConfig and StreamingAudioConfig (googleapis cloud_tts.proto; 4.0 until
    # 2025-03-31): a rate the service would refuse on every phrase is refused here, at the flow's line.
    speaking_rate: float = Field(
        default=_LINE.voice.speaking_rate, ge=0.25, le=2.0, description="1.0 is normal speed (0.25 to 2.0)."
    )

    @field_validator("name")
    @classmethod
    def _speaks_the_language(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Google refuses a voice whose language is not the request's (bot.providers.voices: voice_language).
        language, own = info.data.get("language"), voice_language(value or "")
        if language and own and own.lower() != language.lower():
            raise ValueError(
                f"the voice {value} speaks {own}, not voice.language {language}: Google refuses it"
            )
        return value


class PhraseSettings(StrictModel):
    strategy: PhraseStrategy = Field(
        default=_LINE.phrases.strategy,
        description="Where answers are cut for speech: word, sentence or phrase.",
    )
    min_phrase_length: int = Field(
        default=_LINE.phrases.min_phrase_length, ge=0, description="phrase: characters before a cut at , ; :"
    )
    first_phrase_min_length: int = Field(
        default=_LINE.phrases.first_phrase_min_length,
        ge=0,
        description="The same for an answer's first phrase.",
    )
    first_phrase_max_words: int = Field(
        default=_LINE.phrases.first_phrase_max_words,
        ge=0,
        description="Cut the first phrase after N words (0: off).",
    )


class EndpointingSettings(StrictModel):
    min_speech_ms: int = Field(
        default=_LINE.endpointing.min_speech_ms,
        gt=0,
        description="Voiced time before speech counts (and barges in).",
    )
    end_silence_ms: int = Field(
        default=_LINE.endpointing.end_silence_ms, gt=0, description="Silence that ends a turn."
    )
    pause_ms: int = Field(
        default=_LINE.endpointing.pause_ms,
        ge=0,
        description="Silence that starts early work (0: off); < end_silence_ms.",
    )
    pre_roll_ms: int = Field(
        default=_LINE.endpointing.pre_roll_ms, ge=0, description="Audio kept before the onset."
    )
    max_utterance_ms: int = Field(
        default=_LINE.endpointing.max_utterance_ms,
        gt=0,
        description="A turn ends after this long; > min_speech_ms.",
    )
    threshold_ratio: float = Field(
        default=_LINE.endpointing.threshold_ratio, gt=0, description="Speech / noise ratio."
    )
    min_rms: int = Field(
        default=_LINE.endpointing.min_rms, gt=0, description="Quietest level that counts as speech."
    )
    noise_floor_alpha: float = Field(
        default=_LINE.endpointing.noise_floor_alpha,
        gt=0,
        le=1,
        description="How fast the noise floor adapts.",
    )
    noise_window_ms: int = Field(
        default=_LINE.endpointing.noise_window_ms,
        gt=0,
        description="Window of the quietest-frame floor guard.",
    )
    speculation: Literal["off", "stt", "llm"] = Field(
        default=_LINE.speculation,
        description="Work started during pause_ms: off, stt, or llm (stt and the model).",
    )

    @field_validator("pause_ms")
    @classmethod
    def _pause_before_end(cls, value: int, info: ValidationInfo) -> int:
        end = info.data.get("end_silence_ms")
        if value and end is not None and value >= end:
            raise ValueError(f"must be < end_silence_ms ({end}), got {value}")
        return value

    @field_validator("max_utterance_ms")
    @classmethod
    def _longer_than_onset(cls, value: int, info: ValidationInfo) -> int:
        onset = info.data.get("min_speech_ms")
        if onset is not None and value <= onset:
            raise ValueError(f"must be > min_speech_ms ({onset}), got {value}")
        return value

    @model_validator(mode="after")
    def _builds(self) -> EndpointingSettings:
        self.to_config()  # the real dataclass's own checks: a valid flow never fails at call time
        return self

    def to_config(self) -> EndpointerConfig:
        values = self.model_dump(exclude={"speculation"})
        return EndpointerConfig(**values)


class BargeInSettings(StrictModel):
    enabled: bool = Field(
        default=_LINE.barge_in, description="Caller speech (endpointing.min_speech_ms of it) stops the bot."
    )


class FillerSettings(StrictModel):
    tool_text: Text = Field(
        default=_LINE.filler_text, description="Said while tools run (unless a tool has its own)."
    )
    tool_delay_s: float = Field(
        default=_LINE.filler_delay_s, ge=0, description="Tools still running after this: filler."
    )
    silence_text: Text = Field(
        default=_LINE.silence_filler_text, description="Said when the answer is slow to start."
    )
    silence_after_s: float = Field(
        default=_LINE.silence_filler_s,
        gt=0,
        description="Seconds after the caller finished before silence_text.",
    )
    progress_texts: list[Text] = Field(
        default_factory=lambda: list(_LINE.progress.texts),
        min_length=1,
        description="Said in turn while the answer is still slow after a filler (never twice in a row).",
    )
    progress_after_s: float = Field(
        default=_LINE.progress.first_after_s, ge=0, description="Quiet after the filler before the first."
    )
    progress_every_s: float = Field(
        default=_LINE.progress.every_s, ge=0, description="Quiet after one progress line before the next."
    )
    max_progress_lines: int = Field(
        default=_LINE.progress.max_lines, ge=0, description="Progress lines per turn at most (0: none)."
    )

    def progress(self) -> ProgressConfig:
        return ProgressConfig(
            tuple(self.progress_texts), self.progress_after_s, self.progress_every_s, self.max_progress_lines
        )


class TimeoutSettings(StrictModel):
    silence_reprompt_s: PositiveSeconds = Field(
        default=_TIMEOUTS.silence_reprompt_s, description="Caller silent this long: say reprompt_text."
    )
    reprompt_text: Text = Field(default=_TIMEOUTS.reprompt_text, description="Said after silence_reprompt_s.")
    max_reprompts: int = Field(
        default=_TIMEOUTS.max_reprompts,
        ge=0,
        description="Unanswered reprompts before the goodbye and hang-up.",
    )
    no_answer_goodbye: Text = Field(
        default=_TIMEOUTS.no_answer_goodbye, description="Said before hanging up after max_reprompts."
    )
    max_call_s: PositiveSeconds = Field(default=_TIMEOUTS.max_call_s, description="Longest call, in seconds.")
    max_call_goodbye: Text = Field(
        default=_TIMEOUTS.max_call_goodbye, description="Said before hanging up at max_call_s."
    )


class DtmfSettings(StrictModel):
    enabled: bool = Field(default=_DTMF.enabled, description="Give keypad digits to the model.")
    finish_key: Literal["#", "*"] = Field(
        default=_DTMF.finish_key, description="Key that ends the digits at once."
    )
    timeout_s: PositiveSeconds = Field(
        default=_DTMF.timeout_s, description="Digits end after this long without a key."
    )


class Flow(StrictModel):
    name: Name = Field(description="Names the flow in logs; unique among the flows.")
    numbers: list[PhoneNumber] = Field(default_factory=list, description="The To numbers this flow answers.")
    default: bool = Field(default=False, description="Answers every number no flow lists; exactly one flow.")
    greeting: Greeting = Field(description="What the bot says first.")
    system_prompt: Text = Field(description="Instructions for the model: role, tone, what to do.")
    llm: LlmSettings = Field(default_factory=LlmSettings, description="The chat model.")
    voice: VoiceSettings = Field(default_factory=VoiceSettings, description="How the bot sounds.")
    phrases: PhraseSettings = Field(default_factory=PhraseSettings, description="Cutting answers for speech.")
    endpointing: EndpointingSettings = Field(
        default_factory=EndpointingSettings, description="When the caller's turn starts and ends."
    )
    barge_in: BargeInSettings = Field(default_factory=BargeInSettings, description="Caller talks over bot.")
    fillers: FillerSettings = Field(default_factory=FillerSettings, description="Said while waiting.")
    apology: Text = Field(
        default=_LINE.apology_text, description="Said when the bot cannot answer (a fault)."
    )
    resume: Text = Field(
        default=_LINE.resume_text, description="Said first when a dropped call's stream comes back."
    )
    tools: list[Annotated[ToolSpec, Field(discriminator="type")]] = Field(
        default_factory=list, description="What the model may do: http, python, end_call, transfer_call."
    )
    transfer_targets: dict[Text, PhoneNumber] = Field(
        default_factory=dict, description="Name -> E.164 number, for transfer_call tools."
    )
    timeouts: TimeoutSettings = Field(
        default_factory=TimeoutSettings, description="Silence reprompts and the longest call."
    )
    dtmf: DtmfSettings = Field(default_factory=DtmfSettings, description="Digits typed on the keypad.")

    @model_validator(mode="after")
    def _consistent(self) -> Flow:
        problems = flow_rule_problems(self)
        if problems:
            summary = "; ".join(f"{'.'.join(map(str, loc))}: {reason}" for loc, reason in problems)
            raise PydanticCustomError("flow_rules", "{summary}", {"summary": summary, "problems": problems})
        return self

    def to_line_config(self, tool_factory: ToolFactory, *, version: str = "") -> LineConfig:
        """The ``LineConfig`` for this flow; ``tool_factory`` turns each http/python spec into a ``Tool``."""
        end_call = next((EndCallConfig(t.name, t.description, t.goodbye) for t in self.end_calls()), None)
        return LineConfig(
            name=self.name,
            version=version,
            greeting=self.greeting.text,
            greeting_interruptible=self.greeting.interruptible,
            system_prompt=self.system_prompt,
            tools=tuple(tool_factory(spec) for spec in self.tools if isinstance(spec, FunctionToolSpec)),
            end_call=end_call,
            transfers=tuple(
                TransferConfig(self.transfer_targets[t.target], t.name, t.description, t.say)
                for t in self.tools
                if isinstance(t, TransferCallSpec)
            ),
            tts_provider=self.voice.provider,
            voice=VoiceOptions(self.voice.language, self.voice.name, self.voice.speaking_rate),
            chat=ChatOptions(
                model=self.llm.model,
                temperature=self.llm.temperature,
                reasoning_effort=self.llm.reasoning_effort,
                first_token_timeout_s=self.llm.first_token_timeout_s,
            ),
            phrases=PhraseConfig(**self.phrases.model_dump()),
            endpointing=self.endpointing.to_config(),
            speculation=self.endpointing.speculation,
            barge_in=self.barge_in.enabled,
            filler_delay_s=self.fillers.tool_delay_s,
            filler_text=self.fillers.tool_text,
            silence_filler_s=self.fillers.silence_after_s,
            silence_filler_text=self.fillers.silence_text,
            progress=self.fillers.progress(),
            turn_budget_s=self.llm.turn_budget_s,
            apology_text=self.apology,
            resume_text=self.resume,
            max_tool_rounds=self.llm.max_tool_rounds,
            timeouts=TimeoutConfig(**self.timeouts.model_dump()),
            dtmf=DtmfConfig(**self.dtmf.model_dump()),
        )

    def end_calls(self) -> list[EndCallSpec]:
        return [t for t in self.tools if isinstance(t, EndCallSpec)]


def flow_rule_problems(flow: Flow) -> list[tuple[Loc, str]]:
    """Rules across the fields of one valid flow, as ``(loc, reason)`` pairs."""
    problems: list[tuple[Loc, str]] = []
    first_index: dict[str, int] = {}
    for i, number in enumerate(flow.numbers):
        if number in first_index:
            problems.append(
                (("numbers", i), f"{number} is listed twice (also numbers[{first_index[number]}])")
            )
        first_index.setdefault(number, i)
    if not flow.numbers and not flow.default:
        problems.append(
            (("numbers",), "the flow serves no numbers and is not the default: no call reaches it")
        )
    tool_index: dict[str, int] = {}
    for i, tool in enumerate(flow.tools):
        if tool.name in tool_index:
            problems.append(
                (("tools", i, "name"), f"{tool.name!r} is already the name of tools[{tool_index[tool.name]}]")
            )
        elif isinstance(tool, EndCallSpec) and tool is not flow.end_calls()[0]:
            first = flow.tools.index(flow.end_calls()[0])
            problems.append((("tools", i, "type"), f"only one end_call tool per flow (also tools[{first}])"))
        tool_index.setdefault(tool.name, i)
        if isinstance(tool, TransferCallSpec) and tool.target not in flow.transfer_targets:
            known = ", ".join(repr(name) for name in flow.transfer_targets) or "none"
            problems.append(
                (("tools", i, "target"), f"no transfer target {tool.target!r} (transfer_targets: {known})")
            )
    return problems

