"""Looking at the stacks: ``dashboard`` (every stack live in a browser, /metrics)."""
from __future__ import annotations

import click

from queuekit.core.config import settings

from .common import say


@click.command()
@click.option("--port", type=int, help="Default 8050 (+ QUEUEKIT_PORT_OFFSET).")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between samples.")
def dashboard(port: int | None, interval: float) -> None:
    """Every stack and workload live in a browser (backlog/lag, in flight, dead letters with reasons,
    rates, consumers; small live charts), and Prometheus /metrics. Serves on 127.0.0.1 until Ctrl-C."""
    import uvicorn

    from queuekit.core.config import LOOPBACK
    from queuekit.report.dashboard import create_app

    s = settings()
    port = port or s.ports.dashboard
    say(f"dashboard on http://{LOOPBACK}:{port}/  (Prometheus: /metrics; RabbitMQ's own: "
        f"http://{LOOPBACK}:{s.ports.rabbit_prometheus}/metrics)")
    uvicorn.run(create_app(s, interval), host=LOOPBACK, port=port, log_level="warning")
