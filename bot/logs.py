"""structlog JSON logging: one JSON object per line on stdout, ``call_sid`` bound per call.

Library loggers (aiohttp, openai, grpc, twilio) go through the same JSON renderer. A last-line
processor masks any configured secret that slipped into a log value, and every value in the process's
secret list (``bot.secret_values.known()``: HTTP tools' header values, which a reload may add).

Tracebacks are rendered as dicts **without frame locals** (``TRACEBACKS``): structlog's
``dict_tracebacks`` shows every frame's locals by default, and a frame of aiohttp's body reader holds the
request body (caller numbers, form fields). Rejection lines are limited per reason (``bot.log_limit``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from bot.log_limit import limit_rejection_lines
from bot.secret_values import known

REDACTED = "[redacted]"
# structlog's dict_tracebacks with show_locals off (structlog 26.1 tracebacks.py: SHOW_LOCALS = True).
TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


class SecretMasker:
    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = [s for s in secrets if len(s) >= 4]

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        learned = known()  # read per event: a reload may have added header values
        secrets = [*learned, *self._secrets] if learned else self._secrets
        if secrets:
            for key, value in event.items():
                event[key] = self._mask(value, secrets)
        return event

    def _mask(self, value: Any, secrets: list[str]) -> Any:
        # Walks nested values too: tracebacks (TRACEBACKS), headers dicts, lists of args.
        if isinstance(value, str):
            for secret in secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._mask(v, secrets) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._mask(v, secrets) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self._mask(repr(value), secrets)


def configure_logging(
    level: str = "info", *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    out = stream or sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    masker = SecretMasker(secrets)
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            limit_rejection_lines,
            *shared,
            TRACEBACKS,
            masker,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                TRACEBACKS,
                masker,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(numeric, logging.WARNING))  # libraries: warnings and up
