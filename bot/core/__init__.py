"""The pure core: the call's rules with no asyncio, no socket and no vendor SDK; plain functions and small
state machines, fed ``now`` where time matters (contract in pyproject.toml's ``[tool.importlinter]``).

``twilio_messages`` (Media Streams frames in and out), ``binding`` (stream to webhook binding, SIDs),
``heard`` (which phrases the caller heard), ``history`` (the conversation sent to the model),
``tool_calls`` (streamed tool-call assembly), ``keypad`` (DTMF entries), ``silence`` (reprompts and
call-length limits), ``pacing`` (inbound audio against the clock), ``redact`` and ``secret_values`` (one
masking rule).
"""
