"""What the tests share: phone scripts, fakes and clocks, written once (fixtures: ``tests/conftest.py``).

Rules:
- One helper, one home: a test file imports what it shares from here, never from another test file.
- Fakes implement the product's protocols (``bot.providers.tts.protocol.TextToSpeech``, the
  ``() -> float`` clock the product takes) and mypy checks them against those protocols (``tests.support``
  is in pyproject's mypy packages).
- Nothing here patches the product: the helpers drive the emulators and read what the bench exposes.

Modules: ``phone`` (a caller's scripts and waits on a bench call), ``heard`` (what the caller heard, by the
marks the phone echoed), ``raw_media`` (Twilio's side of a media socket driven by hand), ``recordings`` (a
call's recording read back), ``tasks`` (the bot's asyncio tasks, for leak checks), ``served`` (``bot serve``
as a subprocess, its environment and log), ``webhooks`` (Twilio's form, URLs and signatures), ``ports``
(free loopback ports), ``flows`` (the shipped store flow, edited), ``metrics`` (``/metrics`` as Prometheus
reads it), ``fakes`` (providers, the recording sink), ``clocks``, ``speaker`` (the Speaker tests' wire),
``sample_call`` and ``long_call`` (recorded calls for the inspector and reader), ``vad`` (endpointer
signals), ``image_tree`` (the production image's files, laid out offline), ``routes`` (the types of the
``serve_routes`` fixture), ``rendezvous`` (a deterministic proof that calls run concurrently).
"""
