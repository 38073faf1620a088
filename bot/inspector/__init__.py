"""The call inspector: one self-contained HTML page per recorded call.

``build_timeline`` turns a ``Recording`` into a plain data model (``bot.inspector.timeline``);
``render_page`` turns that model into one HTML string with no external reference (``bot.inspector.page``).
``bot inspect`` (``bot.inspector.cli``) writes the page to a file; ``calls_routes``
(``bot.inspector.routes``) serves it, token-protected, under ``/calls``.
"""

from bot.inspector.page import render_page
from bot.inspector.timeline import CallTimeline, build_timeline

__all__ = ["CallTimeline", "build_timeline", "render_page"]
