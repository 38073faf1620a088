"""A live call recorded into an S3-compatible bucket (moto's server on 127.0.0.1) through the server's own
settings, then looked at through ``/calls``: the store behind the same interface, end to end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from moto.server import ThreadedMotoServer

from bot.recording.s3 import s3_client
from bot.sim.rig import bench
from tests.support.phone import a_call_ended, ask_after_greeting

TOKEN = "inspector-token-0123456789abcdef0123"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, no_aws_config: None) -> Iterator[tuple[str, str]]:
    """An endpoint and an empty bucket; dummy credentials from the environment, as boto3 reads them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = f"calls-{uuid.uuid4().hex[:8]}"
        client: Any = s3_client(endpoint_url=endpoint, region="us-east-1")
        client.create_bucket(Bucket=bucket)
        yield endpoint, bucket
    finally:
        server.stop()


async def test_a_live_call_lands_in_the_bucket_and_shows_at_calls(
    s3: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3
    settings = {
        "recordings_dir": str(tmp_path / "spool"),
        "recordings_s3_bucket": bucket,
        "recordings_s3_endpoint_url": endpoint,
        "recordings_s3_region": "us-east-1",
        "calls_token": TOKEN,
    }
    async with bench(stt_delay_s=0.05, llm_first_token_s=0.05, settings=settings) as b:
        async with await b.phone.dial() as call:
            await ask_after_greeting(call, "What are your opening hours on Saturday?")
            await call.hang_up()
        await a_call_ended(b)
        recorder = b.finished_calls[0].journal.recorder
        assert recorder is not None and not recorder.failed
        recording_id = recorder.recording_id
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{b.server.url}/calls") as response:
                assert response.status == 401  # the token is required
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with http.get(f"{b.server.url}/calls", headers=auth) as response:
                assert response.status == 200 and recording_id in await response.text()
            async with http.get(f"{b.server.url}/calls/{recording_id}", headers=auth) as response:
                page = await response.text()
                assert response.status == 200
    client: Any = s3_client(endpoint_url=endpoint, region="us-east-1")
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {
        f"recordings/{recording_id}/{name}" for name in ("meta.json", "events.jsonl", "caller.ulaw")
    } <= keys
    spooled = [p for p in (tmp_path / "spool").glob("*/*/meta.json") if not p.parts[-3].startswith(".")]
    assert not spooled  # uploaded, so the spool is empty (/calls downloads into spool/.downloads)
    assert 'id="waveform-caller"' in page and "opening hours on Saturday" in page
    assert "testing-secret-key" not in page
