"""The model's recorded answers, served again by the OpenAI emulator: a replay's deterministic model.

Rules:
- A request gets the recorded answer to the same question (``recorded.request_key``), streamed after the
  time the model took to start it (``DEFAULT_FIRST_CHUNK_S`` when the recording predates that figure),
  with the recorded tool calls (ids, names and arguments as the model sent them).
- A request the recording has no answer for (the bot heard something else, or asks something new) gets
  ``NO_ANSWER`` as its text, so the replay shows it as a changed answer; each such request is kept in
  ``misses``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from bot.sim.replay.recorded import RecordedAnswers, RoundKey, request_key
from emulators.openai_script import ChatRequest, Reply, ScriptedToolCall

NO_ANSWER: Final = "(The recording has no answer to this.)"
CHUNK_DELAY_S: Final = 0.02
DEFAULT_FIRST_CHUNK_S: Final = 0.3


@dataclass
class RecordedModel:
    answers: RecordedAnswers
    misses: list[RoundKey | None] = field(default_factory=list)
    served: int = 0

    def __call__(self, request: ChatRequest) -> Reply:
        key = request_key(request.messages)
        answer = self.answers.rounds.get(key) if key is not None else None
        if key is None or answer is None:
            self.misses.append(key)
            return Reply(text=NO_ANSWER, chunk_delay_s=CHUNK_DELAY_S)
        self.served += 1
        return Reply(
            text=answer.text,
            tool_calls=[
                ScriptedToolCall(name, arguments, call_id=id_) for id_, name, arguments in answer.tool_calls
            ],
            first_token_delay_s=DEFAULT_FIRST_CHUNK_S
            if answer.first_chunk_ms is None
            else answer.first_chunk_ms / 1000,
            chunk_delay_s=CHUNK_DELAY_S,
        )
