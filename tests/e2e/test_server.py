"""End to end: the bot's HTTP surface and its process, as Twilio and an operator meet them.

Rules:
- The webhook and the Media Streams upgrade are exercised over real sockets on the bench's server, signed
  with twilio's own ``RequestValidator`` exactly as Twilio signs: the webhook over the
  public ``https://`` URL with the form params, the upgrade over the ``wss://`` URL with none.
- ``bot serve`` runs as a real subprocess with a controlled environment, in a temporary directory, on
  127.0.0.1 only; every subprocess is bounded by a timeout and killed in a ``finally``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from bot.core.binding import PARAMETER, check_binding, mint_binding
from bot.sim.rig import AUTH_TOKEN, PUBLIC_BASE_URL, bench
from bot.sim.store_line import store_line
from emulators import twilio_wire as wire
from emulators.openai_server import OpenAIEmulator
from emulators.phone import SimulatedPhone
from emulators.tts_server import TtsEmulator
from tests.support.phone import a_call_ended
from tests.support.served import (
    OPENAI_SECRET,
    PROCESS_TIMEOUT_S,
    TWILIO_SECRET,
    ServeExited,
    run_bot,
    serve_env,
    serve_then_stop,
    wait_healthy,
)
from tests.support.webhooks import FORM, STREAM_URL, VOICE_URL, sign

# ---- POST /voice ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(sign(VOICE_URL, FORM, token="not-the-auth-token"), id="wrong_token"),
        pytest.param(None, id="no_signature"),
        pytest.param(sign(VOICE_URL.replace("https://", "http://"), FORM), id="signed_over_http"),
        pytest.param(sign("https://other.example.com/voice", FORM), id="signed_over_other_host"),
        pytest.param(sign(VOICE_URL, {**FORM, "To": "+15550111"}), id="signed_over_other_params"),
        pytest.param("", id="empty_signature"),
    ],
)
async def test_voice_webhook_with_a_bad_signature_is_forbidden(signature: str | None) -> None:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    async with (
        bench() as b,
        aiohttp.ClientSession() as http,
        http.post(b.server.url + "/voice", data=FORM, headers=headers) as response,
    ):
        assert response.status == 403
        assert "<Stream" not in await response.text()


async def test_voice_webhook_correctly_signed_answers_twiml_connecting_the_stream() -> None:
    async with bench() as b, aiohttp.ClientSession() as http:
        headers = {"X-Twilio-Signature": sign(VOICE_URL, FORM)}
        async with http.post(b.server.url + "/voice", data=FORM, headers=headers) as response:
            assert response.status == 200
            assert response.content_type == "text/xml"
            twiml = await response.text()
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Connect"]
    streams = root.findall("./Connect/Stream")
    assert len(streams) == 1
    url = streams[0].get("url", "")
    assert url == STREAM_URL
    assert urlsplit(url).query == ""  # Twilio refuses query strings (31922): values go in <Parameter>s
    parameters = {p.get("name"): p.get("value") for p in streams[0].findall("Parameter")}
    binding = parameters.pop(PARAMETER)  # binds the stream to this call (tests/e2e/test_stream_binding.py)
    assert parameters == {"to": FORM["To"], "from": FORM["From"], "line": "store"}
    params = {PARAMETER: binding or ""}
    assert check_binding(AUTH_TOKEN, params, FORM["CallSid"], FORM["AccountSid"], now=time.time()) is None


# ---- GET /media ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(sign(STREAM_URL, {}, token="not-the-auth-token"), id="wrong_token"),
        pytest.param(None, id="no_signature"),
        pytest.param(sign(STREAM_URL.replace("wss://", "https://"), {}), id="signed_over_https"),
        pytest.param(sign("wss://other.example.com/media", {}), id="signed_over_other_host"),
    ],
)
async def test_media_upgrade_with_a_bad_signature_is_forbidden_without_a_websocket(
    signature: str | None,
) -> None:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    async with bench() as b, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(b.server.url + "/media", headers=headers)
        assert refused.value.status == 403
        await asyncio.sleep(0.1)
        assert not b.active_calls and not b.finished_calls  # no Call was ever created


async def test_media_upgrade_signed_over_the_wss_url_is_accepted() -> None:
    # The control for the refusals above: the same request with Twilio's signature gets its socket, and
    # a start bound to its webhook makes it a call.
    async with bench() as b, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            b.server.url + "/media", headers={"X-Twilio-Signature": sign(STREAM_URL, {})}
        )
        try:
            await ws.send_str(wire.connected_message())
            parameters = {
                PARAMETER: mint_binding(AUTH_TOKEN, FORM["CallSid"], FORM["AccountSid"], now=time.time())
            }
            start = wire.start_message(
                1,
                stream_sid="MZ" + "1" * 32,
                account_sid=FORM["AccountSid"],
                call_sid=FORM["CallSid"],
                custom_parameters=parameters,
            )
            await ws.send_str(start)
            assert await ws.receive(timeout=10)  # the greeting's first frame
            assert len(b.active_calls) == 1
        finally:
            await ws.close()


# ---- GET /healthz --------------------------------------------------------------------------------------


async def test_healthz_reports_ok_and_the_number_of_active_calls() -> None:
    async with bench() as b, aiohttp.ClientSession() as http:

        async def health() -> dict[str, object]:
            async with http.get(b.server.url + "/healthz") as response:
                assert response.status == 200
                assert response.content_type == "application/json"
                body: dict[str, object] = await response.json()
                return body

        flows = {"store": store_line().version}  # the rig serves flows/store.yaml: its version, a hash
        assert flows["store"]
        assert await health() == {"status": "ok", "active_calls": 0, "flows": flows}
        async with await b.phone.dial() as call:
            await call.wait_for_bot_audio(after=0.0, timeout=10)
            assert await health() == {"status": "ok", "active_calls": 1, "flows": flows}
            await call.hang_up()
        await a_call_ended(b)
        assert await health() == {"status": "ok", "active_calls": 0, "flows": flows}


# ---- bot serve -----------------------------------------------------------------------------------------


def assert_one_line_naming(result: subprocess.CompletedProcess[str], variable: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    for secret in (TWILIO_SECRET, OPENAI_SECRET):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TWILIO_AUTH_TOKEN", None),
        ("GOOGLE_TTS_ENDPOINT", "nonsense"),
        ("PORT", "abc"),
        ("PUBLIC_BASE_URL", "bot.example.com"),
        ("LLM_STALL_TIMEOUT_S", "0"),
        ("DRAIN_TIMEOUT_S", "-1"),
    ],
)
def test_serve_with_a_missing_or_malformed_setting_exits_2_with_one_line_naming_it(
    variable: str, value: str | None, tmp_path: Path
) -> None:
    result = run_bot(["serve"], serve_env(**{variable: value}), tmp_path)
    assert_one_line_naming(result, variable)


def test_serve_with_no_language_model_at_all_exits_2_naming_the_settings(tmp_path: Path) -> None:
    # Without a key the bot can still use a local OpenAI-compatible server (OPENAI_BASE_URL); with
    # neither there is no language model to talk to.
    result = run_bot(["serve"], serve_env(OPENAI_API_KEY=None, OPENAI_BASE_URL=None), tmp_path)
    assert_one_line_naming(result, "OPENAI_API_KEY")
    assert "OPENAI_BASE_URL" in result.stderr


async def test_serve_with_an_empty_twilio_auth_token_exits_2_naming_it(tmp_path: Path) -> None:
    env = serve_env(TWILIO_AUTH_TOKEN="")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        try:
            await asyncio.wait_for(wait_healthy(f"http://127.0.0.1:{env['PORT']}", process), 20)
        except ServeExited:
            pass
        else:
            # It is serving: show what that means before failing.
            async with aiohttp.ClientSession() as http:
                forged = {"X-Twilio-Signature": sign(VOICE_URL, FORM, token="")}
                async with http.post(f"http://127.0.0.1:{env['PORT']}/voice", data=FORM, headers=forged) as r:
                    pytest.fail(
                        f"bot serve started with an empty TWILIO_AUTH_TOKEN; a webhook signed with "
                        f"the empty key got HTTP {r.status}"
                    )
        stdout, stderr = await asyncio.wait_for(process.communicate(), PROCESS_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    assert process.returncode is not None
    result = subprocess.CompletedProcess(
        ["bot", "serve"], process.returncode, stdout.decode(), stderr.decode()
    )
    assert_one_line_naming(result, "TWILIO_AUTH_TOKEN")


def test_serve_with_an_empty_openai_api_key_exits_2_naming_it(tmp_path: Path) -> None:
    result = run_bot(["serve"], serve_env(OPENAI_API_KEY=""), tmp_path)
    assert_one_line_naming(result, "OPENAI_API_KEY")


async def test_serve_answers_healthz_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    stopped = await serve_then_stop(
        [sys.executable, "-m", "bot", "serve"], serve_env(), tmp_path, start_timeout_s=20, stop_timeout_s=10
    )
    assert stopped.health["status"] == "ok" and stopped.health["active_calls"] == 0
    assert list(stopped.health["flows"]) == ["store"]  # the shipped flow, by name and version
    assert '"event": "listening"' in stopped.stdout
    assert '"event": "draining"' in stopped.stdout  # no call live: the drain ends at once
    assert '"event": "shutting_down"' in stopped.stdout
    for secret in (TWILIO_SECRET, OPENAI_SECRET):
        assert secret not in stopped.stdout + stopped.stderr


async def test_serve_stops_within_seconds_on_sigterm_during_a_call(tmp_path: Path) -> None:
    async with OpenAIEmulator() as openai_emu, TtsEmulator(ms_per_char=30) as tts_emu:
        # No drain: this is about hanging up live calls (tests/e2e/test_drain.py covers the wait).
        env = serve_env(
            OPENAI_BASE_URL=openai_emu.base_url, GOOGLE_TTS_ENDPOINT=tts_emu.address, DRAIN_TIMEOUT_S="0"
        )
        url = f"http://127.0.0.1:{env['PORT']}"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await asyncio.wait_for(wait_healthy(url, process), 20)
            phone = SimulatedPhone(bot_url=url, auth_token=TWILIO_SECRET, public_base_url=PUBLIC_BASE_URL)
            async with await phone.dial() as call:
                await call.wait_for_bot_audio(after=0.0, timeout=10)  # the greeting: the call is live
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 6)
                except TimeoutError:
                    process.kill()
                    pytest.fail("bot serve still running 6 s after SIGTERM with a call in progress")
                assert process.returncode == 0
                await call.wait_closed(timeout=5)  # the bot ended the call rather than leave it hanging
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
