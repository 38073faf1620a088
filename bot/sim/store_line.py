"""The example store's line for the rig, the benchmarks and the tests: ``flows/store.yaml``, built by the
product's own loader and builder.

Rules:
- The store exists once, as the shipped flow file: this module only loads it (``load_flows`` and
  ``build_book``, as ``bot serve`` does) and never restates a field of it.
- One override: the store's order system. The shipped one is slow on purpose
  (``bot.flows.store_tools.ORDER_SYSTEM_DELAY_S``); a simulated call's answers at once unless a
  test or benchmark asks for a delay (``order_delay_s``), so only the calls that are about a slow
  tool wait for one. Anything else a test needs differently, it replaces itself
  (``dataclasses.replace(line, ...)``, or the rig's ``**line_overrides``).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import bot
from bot.flows.build import build_book
from bot.flows.line import LineConfig
from bot.flows.loader import load_flows
from bot.flows.store_tools import order_lookup
from bot.tools.http_tool import HttpClient

# The shipped flows (an editable install, as the README's first command makes, runs from the checkout).
SHIPPED_FLOWS = Path(bot.__file__).resolve().parents[1] / "flows"
STORE_FLOW = SHIPPED_FLOWS / "store.yaml"


@functools.cache
def _shipped_store() -> LineConfig:
    # The store declares no HTTP tool and reads no environment: the client is never used.
    return build_book(load_flows(STORE_FLOW), env={}, http=HttpClient()).route(None)


def store_line(*, order_delay_s: float = 0.0) -> LineConfig:
    """``flows/store.yaml``'s line, its order system answering after ``order_delay_s``."""
    line = _shipped_store()
    tools = tuple(
        dataclasses.replace(tool, handler=order_lookup(order_delay_s))
        if tool.name == "lookup_order"
        else tool
        for tool in line.tools
    )
    return dataclasses.replace(line, tools=tools)
