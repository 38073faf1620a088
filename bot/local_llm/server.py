"""llama-cpp-python's OpenAI-compatible server with a chat handler that streams real ``tool_calls``.

Why: the stock server (0.3.36) returns tool calls only without streaming and only with
``tool_choice="auto"``; the bot always streams and sends no ``tool_choice``, so through the stock
server the model never calls a tool. This module registers one more chat format, ``phonebot-tools``,
in llama-cpp-python's own handler registry and runs llama-cpp-python's own server app with it.

Rules of the handler:
- With tools (and ``tool_choice`` not "none"), a first grammar-constrained pass of a few tokens decides
  ``message:`` or ``functions.<name>:``; no tool_choice with tools means "auto", as in OpenAI's API.
- Then it streams: either the message text as ``content`` deltas, or the chosen tool's arguments,
  generated under that tool's JSON-schema grammar, as ``tool_calls`` deltas (id and name first, then
  argument fragments, then ``finish_reason: "tool_calls"``), exactly the shape OpenAI streams.
- Tool results are shown to the model as Qwen ``<tool_response>`` user turns.
- The server's request model rejects ``"content": null`` next to ``tool_calls`` (valid in OpenAI's
  API and what the bot sends); a small ASGI filter drops such nulls before the app sees them.
Only for the opt-in ``local-llm`` extra: this module imports llama_cpp, which the bot never does.
Run through ``bot local-llm`` (which also assembles and checks the weights), bound to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from llama_cpp import Llama, llama_chat_format
from llama_cpp.llama_grammar import LlamaGrammar

CHAT_FORMAT = "phonebot-tools"
_END = "<|im_end|>"


def _system(content: str, tools: list[dict[str, Any]]) -> str:
    lines = [content, "", "Functions available:"]
    for tool in tools:
        f = tool["function"]
        lines.append(f"\nfunctions.{f['name']}:  ({f.get('description', '')})\n{json.dumps(f['parameters'])}")
    lines += [
        "",
        "Reply to the caller's message either with a message or with a function call.",
        "For a message, begin with 'message:' on its own line, then the text.",
        "For a function call, begin with 'functions.<function_name>:' on its own line, then its",
        'arguments as JSON, like { "arg1": "value1" }.',
    ]
    return "\n".join(lines)


def render(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    """The Qwen chat prompt, with our function-calling convention when tools are offered."""
    out: list[str] = []
    for m in messages:
        role, content = m["role"], m.get("content") or ""
        if role == "system":
            out.append(f"<|im_start|>system\n{_system(content, tools) if tools else content}{_END}\n")
        elif role == "user":
            out.append(f"<|im_start|>user\n{content}{_END}\n")
        elif role == "assistant":
            body = f"message:\n{content}" if tools and content else content
            for call in m.get("tool_calls") or ():
                body += f"functions.{call['function']['name']}:\n{call['function']['arguments']}\n"
            out.append(f"<|im_start|>assistant\n{body}{_END}\n")
        elif role == "tool":
            out.append(f"<|im_start|>user\n<tool_response>\n{content}\n</tool_response>{_END}\n")
    return "".join(out) + "<|im_start|>assistant\n"


def _chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _decide(llama: Llama, prompt: str, tools: list[dict[str, Any]], tool_choice: Any) -> str:
    if isinstance(tool_choice, dict):
        return f"functions.{tool_choice['function']['name']}:"
    if not tools:
        return "message:"
    options = " | ".join(json.dumps(f"functions.{t['function']['name']}:") for t in tools)
    grammar = LlamaGrammar.from_string(f'root ::= "message:" | {options}', verbose=False)
    first: Any = llama.create_completion(prompt=prompt, max_tokens=16, temperature=0.0, grammar=grammar)
    return str(first["choices"][0]["text"]).strip()


def handler(
    llama: Llama,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    stream: bool = False,
    temperature: float = 0.2,
    max_tokens: int | None = None,
    model: str | None = None,
    **_: Any,
) -> Iterator[dict[str, Any]]:
    if not stream:
        raise ValueError(f"the {CHAT_FORMAT} chat format streams only (the bot always streams)")
    tools = [] if tool_choice == "none" else list(tools or [])
    prompt = render(messages, tools)
    choice = _decide(llama, prompt, tools, tool_choice)
    cid, created, name = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model or "local"

    def chunks() -> Iterator[dict[str, Any]]:
        yield _chunk(cid, created, name, {"role": "assistant", "content": ""}, None)
        if choice.startswith("functions."):
            tool_name = choice[len("functions.") : -1]
            schema = next(t["function"]["parameters"] for t in tools if t["function"]["name"] == tool_name)
            grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            header = {"index": 0, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                      "function": {"name": tool_name, "arguments": ""}}  # fmt: skip
            yield _chunk(cid, created, name, {"tool_calls": [header]}, None)
            pieces: Any = llama.create_completion(
                prompt=prompt + choice + "\n", grammar=grammar, stream=True, temperature=0.0,
                max_tokens=max_tokens or 128, stop=[_END],
            )  # fmt: skip
            for piece in pieces:
                if text := piece["choices"][0]["text"]:
                    delta = {"tool_calls": [{"index": 0, "function": {"arguments": text}}]}
                    yield _chunk(cid, created, name, delta, None)
            yield _chunk(cid, created, name, {}, "tool_calls")
            return
        finish = "stop"
        pieces = llama.create_completion(
            prompt=prompt + ("message:\n" if tools else ""), stream=True, temperature=temperature,
            max_tokens=max_tokens, stop=[_END],
        )  # fmt: skip
        for piece in pieces:
            finish = piece["choices"][0]["finish_reason"] or finish
            if text := piece["choices"][0]["text"]:
                yield _chunk(cid, created, name, {"content": text}, None)
        yield _chunk(cid, created, name, {}, finish)

    return chunks()


llama_chat_format.register_chat_completion_handler(CHAT_FORMAT)(handler)


def drop_null_content(app: Any) -> Any:
    """ASGI filter: remove ``"content": null`` from chat messages (the server's model rejects it)."""

    async def filtered(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/chat/completions":
            await app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            data = json.loads(body)
            for m in data.get("messages", []):
                if isinstance(m, dict) and "content" in m and m["content"] is None:
                    del m["content"]
            body = json.dumps(data).encode()
        except (ValueError, AttributeError):
            pass  # not our business: the app answers the malformed request itself
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await app({**scope, "headers": headers}, replay, send)

    return filtered


def main(argv: list[str] | None = None) -> None:
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    parser = argparse.ArgumentParser(prog="python -m bot.local_llm.server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--model-alias", default="local")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--n-threads", type=int, default=2)
    args = parser.parse_args(argv)
    settings = ModelSettings(
        model=args.model, model_alias=args.model_alias, chat_format=CHAT_FORMAT, n_ctx=args.n_ctx,
        n_threads=args.n_threads, n_threads_batch=args.n_threads, logits_all=False, verbose=False,
    )  # fmt: skip
    app = create_app(
        server_settings=ServerSettings(host="127.0.0.1", port=args.port), model_settings=[settings]
    )
    uvicorn.run(drop_null_content(app), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
