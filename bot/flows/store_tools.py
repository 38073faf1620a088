"""The example store's Python tools, named by ``flows/store.yaml`` as ``bot.flows.store_tools:...``.

Rules:
- ``check_hours`` knows the seven days of the packaged ``bot/data/store.json`` (any case, spaces
  ignored); ``lookup_order`` keeps only the digits of what the caller said.
- The data file is read once, on the first call (it ships with the package and never changes).
- The example store's order system is slow on purpose (``ORDER_SYSTEM_DELAY_S``, set here only), as
  real ones often are: callers of the shipped flow hear the tool's filler while it runs. The rig and
  the benchmarks swap in ``order_lookup(delay_s)`` for a quicker (or slower) one
  (``bot.sim.store_line``).
- Results are small dicts; an unknown day or order is an answer for the model, never an exception.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

ORDER_SYSTEM_DELAY_S = 0.8


@functools.cache
def _store_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("bot").joinpath("data/store.json").read_text(encoding="utf-8")
    )
    return data


def hours_answer(hours: dict[str, str], day: str) -> dict[str, str]:
    key = day.strip().lower()
    if key not in hours:
        return {"error": f"unknown day {day!r}; ask for a day of the week"}
    return {"day": key, "hours": hours[key]}


def order_answer(orders: dict[str, dict[str, str]], order_id: str) -> dict[str, str]:
    digits = "".join(ch for ch in str(order_id) if ch.isdigit())
    order = orders.get(digits)
    if order is None:
        return {"order_id": digits, "status": "not found"}
    return {"order_id": digits, **order}


async def check_hours(day: str) -> dict[str, str]:
    """Opening hours of the store on a day of the week."""
    return hours_answer(_store_data()["hours"], day)


def order_lookup(delay_s: float = ORDER_SYSTEM_DELAY_S) -> Callable[[str], Awaitable[dict[str, str]]]:
    """``lookup_order`` with an order system that answers after ``delay_s``."""

    async def lookup_order(order_id: str) -> dict[str, str]:
        """Status and delivery estimate of an order, from the digits of ``order_id``."""
        await asyncio.sleep(delay_s)
        return order_answer(_store_data()["orders"], order_id)

    return lookup_order


lookup_order = order_lookup()
