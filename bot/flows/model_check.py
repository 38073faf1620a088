"""The models a set of flows will use, checked against ``bot.providers.llm.models``: at the line that names
them.

Rules:
- Each flow's chat model is its ``llm.model``, else the server's ``LLM_MODEL`` (then the message says
  so). Request settings that model rejects (``reasoning_effort``, ``temperature``, tools) are *errors*
  at the line of the setting when the flow sets it, else at ``llm.model`` (or ``tools``/``llm`` when the
  flow names no model): every turn of such a flow would fail.
- A model near its announced shutdown is a *warning*, one that is past it an *error* ("loud"); a
  flow's own model is reported at its ``llm.model`` line, the server's models (``LLM_MODEL``,
  ``STT_MODEL``) once for the whole set.
- Pure: the caller passes the server's models and ``today``; nothing here reads the clock or env.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from bot.flows.loader import FlowProblem, FlowSet
from bot.providers.llm.models import Level, chat_problems, shutdown_notice


@dataclass(frozen=True)
class ModelReport:
    invalid: tuple[FlowProblem, ...] = ()  # request settings the model rejects: the flows cannot work
    shutdowns: tuple[tuple[Level, FlowProblem], ...] = field(default=())

    @property
    def errors(self) -> list[FlowProblem]:
        """Everything that fails every turn: rejected settings and models already shut down."""
        return [*self.invalid, *(p for level, p in self.shutdowns if level == "error")]

    @property
    def warnings(self) -> list[FlowProblem]:
        return [p for level, p in self.shutdowns if level == "warning"]


def check_models(flows: FlowSet | None, *, llm_model: str, stt_model: str | None, today: date) -> ModelReport:
    """The report for ``flows`` (None: a fixed line, only the server's models) on ``today``."""
    invalid: list[FlowProblem] = []
    shutdowns: list[tuple[Level, FlowProblem]] = []
    for setting, model in (("LLM_MODEL", llm_model), ("STT_MODEL", stt_model)):
        notice = shutdown_notice(model, today) if model else None
        if notice is not None:
            shutdowns.append((notice.level, FlowProblem(None, None, "", f"{setting}: {notice.reason}")))
    if flows is None:
        return ModelReport((), tuple(shutdowns))
    for index, flow in enumerate(flows.flows):
        llm = flow.llm
        model = llm.model or llm_model
        if llm.model:
            notice = shutdown_notice(llm.model, today)
            if notice is not None:
                shutdowns.append((notice.level, flows.problem(index, ("llm", "model"), notice.reason)))
        server = "" if llm.model else " (the server's LLM_MODEL)"
        rejected = chat_problems(
            model,
            reasoning_effort=llm.reasoning_effort,
            temperature=llm.temperature,
            has_tools=bool(flow.tools),
        )
        for problem in rejected:
            set_here = problem.field != "tools" and getattr(llm, problem.field) is not None
            loc: tuple[str | int, ...] = ("llm", problem.field) if set_here else ("llm", "model")
            if not set_here and not llm.model:
                loc = ("tools",) if problem.field == "tools" else ("llm",)
            invalid.append(flows.problem(index, loc, problem.reason + server))
    return ModelReport(tuple(invalid), tuple(shutdowns))
