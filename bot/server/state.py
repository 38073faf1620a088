"""The application's shared state: one ``AppKey`` per thing the routes read, set by ``create_app``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from bot.call.call import Call
from bot.call.deps import CallDeps
from bot.server.media_socket import MediaSocket
from bot.server.settings import Settings
from bot.server.twilio.callback_dedupe import Callbacks
from bot.server.twilio.connect_action import EndedCalls
from bot.server.twilio.webhook import FormLimits, SignatureChecker

SETTINGS = web.AppKey("settings", Settings)
DEPS = web.AppKey("deps", CallDeps)
CHECKER = web.AppKey("checker", SignatureChecker)
CALLS = web.AppKey("calls", set[Call])
SOCKETS = web.AppKey("sockets", set[MediaSocket])
# Called with each Call when it ends (the demo's report; recordings are written by the Call's journal).
CALL_OBSERVERS = web.AppKey("call_observers", list[Callable[[Call], None]])
DRAINING = web.AppKey("draining", asyncio.Event)  # set once: new calls are refused
NO_CALLS = web.AppKey("no_calls", asyncio.Event)  # set while CALLS is empty (the drain waits on it)
AWAITING_START = web.AppKey("awaiting_start", list[int])  # [sockets upgraded, start not yet read]
FORMS = web.AppKey("forms", FormLimits)  # the unauthenticated bodies being read (bot.server.twilio.webhook)
ENDED = web.AppKey("ended", EndedCalls)  # calls this replica ended on purpose (goodbye, transfer)
RECENT = web.AppKey("recent", Callbacks)  # signed callbacks seen lately (bot.server.twilio.callback_dedupe)
