"""What the process tells the world: structlog JSON lines (``logs``, with ``log_limit`` under a flood)
and Prometheus metrics (``metrics``)."""
