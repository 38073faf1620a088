"""structlog JSON logging: one JSON object per line on stdout, ``call_sid`` bound per call.

Library loggers (aiohttp, openai, grpc, twilio) go through the same JSON renderer. A last-line
processor masks any configured secret that slipped into a log key or value, and every value in the
process's secret list (``bot.core.secret_values.known()``: HTTP tools' header values, which a reload may
add), by the one rule of ``bot.core.redact`` (as recordings and tool results are).

Tracebacks are rendered as dicts **without frame locals** (``TRACEBACKS``): structlog's
``dict_tracebacks`` shows every frame's locals by default, and a frame of aiohttp's body reader holds the
request body (caller numbers, form fields). Rejection lines are limited per reason
(``bot.telemetry.log_limit``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from bot.core.redact import Redactor
from bot.core.secret_values import known
from bot.telemetry.log_limit import limit_rejection_lines

# structlog's dict_tracebacks with show_locals off (structlog 26.1 tracebacks.py: SHOW_LOCALS = True).
TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


class SecretMasker:
    """The structlog processor that applies ``bot.core.redact``'s rule to every event."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(secrets)
        self._redactor = Redactor.of(self._secrets)
        # The process's learned values (``known()``) and the redactor built with them: ``known()``
        # returns the same tuple until a reload adds a value, so the redactor is rebuilt only then.
        self._learned: tuple[tuple[str, ...], Redactor] = ((), self._redactor)

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        redactor = self._with_learned(known())  # read per event: a reload may have added header values
        if not redactor:
            return event
        return redactor.mapping(event)  # walks nested values too: tracebacks, headers dicts, args

    def _with_learned(self, learned: tuple[str, ...]) -> Redactor:
        if not learned:
            return self._redactor
        seen, redactor = self._learned
        if seen is not learned:
            redactor = Redactor.of([*learned, *self._secrets])
            self._learned = (learned, redactor)  # one assignment: loggers may run in several threads
        return redactor


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
