"""Providers: every engine behind a protocol, and the product's vendor SDKs (the only other homes of a
vendor SDK are Twilio's webhook checks in ``bot.server.twilio``, S3 in ``bot.recording.s3`` and the
opt-in ``bot.local_llm``; pyproject's import contracts hold it).

``llm/``, ``stt/``, ``tts/`` and ``vad/`` each hold a protocol (``vad``'s is ``media.vad.VoiceDetector``)
and one module per engine; ``tts/registry.py`` is the table of TTS engines and ``tts/fallback.py`` the
voice that speaks what Google's quota refuses. ``engines.py`` is the offline engines' shared plumbing
(models from pip packages, loaded once, one thread pool per engine). Beside them: the voices and clip
caches a call speaks with, and Twilio's REST API.
"""
