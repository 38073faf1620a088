"""Reading the bot's ``GET /metrics`` as an operator's Prometheus would.

Rules:
- Parsed with ``prometheus_client``'s own text parser, so a sample the bot writes wrongly fails here as it
  would fail a real scrape.
- ``exposition`` fetches (the endpoint answers 200 in Prometheus text); ``scrape`` and ``labelled`` read
  what it fetched: the unlabelled samples by name, or one metric's samples by their label values.
"""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


async def exposition(url: str) -> str:
    """The text of ``{url}/metrics``; the endpoint answers 200 in Prometheus text."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


async def scrape(url: str) -> dict[str, float]:
    """The unlabelled samples of ``{url}/metrics`` by name."""
    text = await exposition(url)
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


def labelled(text: str, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The samples of ``name`` in the exposition ``text``, keyed by the values of ``labels`` (all its labels,
    in the order the bot writes them, when none are named)."""
    return {
        tuple(s.labels[label] for label in labels) if labels else tuple(s.labels.values()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }
