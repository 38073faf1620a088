"""One phone call: the asyncio stages one ``Call`` (``bot.call.call``) owns, from Twilio's ``start`` to
``stop``.

``turn_taking`` (caller audio and keys into turns), ``agent`` (a turn into things to say: the model and
its tools), ``speaker`` (phrases into audio frames and marks), ``telephony`` (keypad, silence, goodbye,
hang-up, transfer) with ``actions`` (the ``end_call`` / ``transfer_call`` tools), ``waiting`` and
``progress`` (fillers and progress lines while an answer is slow), ``journal`` (log lines, recording,
metrics), ``turns`` (per-turn figures), ``utterance`` (a fixed line from said to heard) and ``deps`` (what
every call of a server shares). The stages report to the Call only through ``events``.
"""
