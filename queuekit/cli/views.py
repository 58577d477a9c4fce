"""Looking at the stacks: ``dashboard`` (every stack live in a browser, /metrics), ``report`` (from results.json),
``docs`` (one page per stack, generated from its declarations)."""
from __future__ import annotations

import json
from pathlib import Path

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
    from queuekit.suite import client_logs

    s = settings()
    port = port or s.ports.dashboard
    say(f"dashboard on http://{LOOPBACK}:{port}/  (Prometheus: /metrics; RabbitMQ's own: "
        f"http://{LOOPBACK}:{s.ports.rabbit_prometheus}/metrics)")
    with client_logs.to_file(s.run_dir / "dashboard" / "clients.log"):  # a broker restart is not terminal news
        uvicorn.run(create_app(s, interval), host=LOOPBACK, port=port, log_level="warning")


@click.command()
@click.argument("results", type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--bench", type=click.Path(exists=True, path_type=Path),
              help="A `queuekit bench` JSON: adds throughput and latency charts.")
@click.option("--out", type=click.Path(path_type=Path), help="Default: beside RESULTS.")
def report(results: Path, bench: Path | None, out: Path | None) -> None:
    """Rebuild report.md and report.html from a results.json (or its directory): differences first,
    colour by meaning. Works for any number of stacks."""
    from queuekit.report import write_reports

    path = results / "results.json" if results.is_dir() else results
    data = json.loads(path.read_text())
    paths = write_reports(data, out or path.parent, json.loads(bench.read_text()) if bench else None)
    say(f"reports: {paths['md']}  {paths['html']}")


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("docs/stacks"), show_default=True,
              help="Where the pages go.")
def docs(out: Path) -> None:
    """Write one Markdown page per registered stack (its feature sheet and capabilities, from the code):
    what docs/stacks/ holds. Run it after changing a stack's docstring or capabilities."""
    from queuekit.report.stack_pages import write_pages

    for path in write_pages(out):
        say(f"wrote {path}")
