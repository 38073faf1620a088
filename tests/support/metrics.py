"""Reading the bot's ``GET /metrics`` as an operator's Prometheus would.

Rules:
- Parsed with ``prometheus_client``'s own text parser, so a sample the bot writes wrongly fails here as it
  would fail a real scrape.
"""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


async def scrape(url: str) -> dict[str, float]:
    """The unlabelled samples of ``{url}/metrics`` by name; the endpoint answers 200 in Prometheus text."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}
