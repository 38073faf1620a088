"""Loopback ports for tests.

Rules:
- Only 127.0.0.1. A port from ``free_port`` was bound, then released: nothing listens on it, so a server
  may take it, and a client that dials it finds it closed (unless something took it since: rare, and a
  test that needs a port closed for certain keeps a socket bound instead).
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
