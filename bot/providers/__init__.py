"""Providers: every engine behind a protocol, and the vendor SDK code of the product's own side (the
chat model, the TTS engine table and its fallback voice, the clip caches, Twilio's REST API). The
speech engines themselves live in ``media.stt`` and ``media.tts``.
"""
