"""The I/O shell: the aiohttp application (``app``: the routes' rules, health, ``create_app``) with its
handlers (``webhooks`` for Twilio's webhooks, ``media_route`` for the Media Streams socket, ``state`` for
what they share), the socket itself (``media_socket``, ``stream_gate``), process settings, and the wiring
that builds the providers (``wiring``) for every call.

``serve`` runs it (``bot serve``, and in-process for the simulation layer).
"""
