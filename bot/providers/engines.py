"""Shared plumbing for the embedded offline engines (silero VAD, Whisper STT, piper TTS).

Rules:
- Models ship inside pip packages (the ``offline`` extra); ``package_path`` finds a file in an
  installed package's directory. Nothing is ever downloaded: a missing package or file is a
  ``ProviderError(kind="unavailable")`` naming the package, not a fetch.
- A model is loaded at most once per process: ``LazyModel`` runs its loader on first ``get`` under a
  lock (double-checked, so later calls take no lock) and remembers how long the load took. A failed
  load is not cached; the next ``get`` tries again.
- Blocking engine work runs in ``engine_executor(name)``: one small thread pool per engine, shared by
  every call in the process. One pool per engine, not one for all, so a long TTS phrase never queues
  a transcription behind it. Pools are created lazily and live as long as the process; they only
  ever run bounded work, so joining them at interpreter exit is quick.
- No asyncio here, no audio maths, no logging.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Generic, TypeVar

from media.errors import ProviderError

T = TypeVar("T")

OFFLINE_EXTRA_HINT = "pip install 'phonebot[offline]'"


def package_path(provider: str, package: str, *parts: str) -> Path:
    """The on-disk path of ``parts`` inside the installed ``package`` (a file or a directory).

    Raises ``ProviderError(provider, "unavailable")`` when the package is not installed, the path is
    missing, or the package is not unpacked on disk (a zipped install cannot be memory-mapped by the
    engines, so it is refused rather than extracted to a temporary copy).
    """
    try:
        root = resources.files(package)
    except ModuleNotFoundError as exc:
        message = f"package {package} missing ({OFFLINE_EXTRA_HINT})"
        raise ProviderError(provider, "unavailable", message) from exc
    resource = root.joinpath(*parts)
    where = "/".join((package, *parts))
    if not isinstance(resource, Path):
        raise ProviderError(provider, "unavailable", f"{where} is not on disk (zipped install?)")
    if not resource.exists():
        raise ProviderError(provider, "unavailable", f"{where} not found in the installed package")
    return resource


class LazyModel(Generic[T]):
    """A process-wide model built by ``loader`` on first use, then shared (thread-safe)."""

    def __init__(self, loader: Callable[[], T]) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._model: T | None = None
        self.load_seconds: float | None = None  # wall time of the successful load, for benchmarks

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def get(self) -> T:
        """The model, loading it on the first call (blocking: call from a worker thread)."""
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                self._model = self._loader()
                self.load_seconds = time.perf_counter() - started
            return self._model


_executors: dict[str, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def engine_executor(name: str, max_workers: int = 2) -> ThreadPoolExecutor:
    """The process-wide thread pool for engine ``name`` (``max_workers`` applies on first use only)."""
    with _executors_lock:
        executor = _executors.get(name)
        if executor is None:
            executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"engine-{name}")
            _executors[name] = executor
        return executor
