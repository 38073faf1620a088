"""What the tests share: phone scripts, fakes and clocks, written once (fixtures: ``tests/conftest.py``).

Rules:
- One helper, one home: a test file imports what it shares from here, never from another test file.
- Fakes implement the product's protocols (``media.tts.protocol.TextToSpeech``, the ``() -> float`` clock
  the product takes) and mypy checks them against those protocols (``tests.support`` is in pyproject's
  mypy packages).
- Nothing here patches the product: the helpers drive the emulators and read what the bench exposes.
"""
