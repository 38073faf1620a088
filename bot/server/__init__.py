"""The I/O shell: the aiohttp application and its routes, the Media Streams socket, Twilio's webhooks,
process settings, and the wiring that builds the providers (``wiring``) for every call.

``serve`` runs it (``bot serve``, and in-process for the simulation layer).
"""
