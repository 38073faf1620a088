"""The chat-model protocol: one streamed completion, as plain chunk dicts.

Chunks are dicts shaped like OpenAI's ``chat.completion.chunk`` (``ToolCallAssembler`` reads
them), so the agent never touches a vendor type. Implementations raise
``media.errors.ProviderError`` on failure, including a stream that ends without finishing.

The lifecycle is declared here, not looked up: ``warm_up`` (before the first call: open the connection)
and ``aclose`` (at shutdown). A model subclasses ``ChatModel`` and inherits a no-op for the steps it has
nothing to do in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Message = dict[str, Any]
# Every value the API defines (openai/types/shared/reasoning_effort.py, openai 3.60.0); which of them a
# model accepts is in ``bot.providers.llm.models``.
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


@dataclass(frozen=True)
class ChatOptions:
    """Per-call choices (from the call flow); ``None`` keeps the provider's configured value."""

    model: str | None = None
    temperature: float | None = None
    reasoning_effort: ReasoningEffort | None = None  # None: the lowest the model accepts
    first_token_timeout_s: float | None = None  # the flow's wait for a first token (None: the server's)


class ChatModel(Protocol):
    def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]],
        options: ChatOptions | None = None,
    ) -> AsyncIterator[Mapping[str, Any]]: ...

    async def warm_up(self) -> None:
        """Before the first call: connect, so the first caller does not wait for it. Nothing by default."""
        return None

    async def aclose(self) -> None:
        """At shutdown: release connections. Nothing by default."""
        return None
