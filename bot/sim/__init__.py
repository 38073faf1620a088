"""The simulation layer: whole simulated calls, the only part of ``bot/`` joining the product and its fakes.

Rules:
- Only modules under ``bot.sim`` import ``emulators``; nothing else in ``bot`` does, and ``emulators``
  imports nothing of ``bot`` (contracts in pyproject.toml's ``[tool.importlinter]``, checked by
  ``lint-imports`` in CI and in ``tests/unit/test_import_contracts.py``).
- ``rig.py``: the whole stack on 127.0.0.1 (both provider emulators, the bot server, a phone) shared by
  the end-to-end tests, the benchmarks, the demo and replay. ``demo.py``: ``bot demo``. ``replay/``:
  ``bot replay``. ``wer.py``: the demo's word error rate. ``store_line.py``: the example store's line
  (``flows/store.yaml``) for the rig, the benchmarks and the tests.
- ``bot.cli`` imports the sim commands per command, so ``bot serve`` never loads the emulators.
"""
