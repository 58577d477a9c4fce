"""Broker client logs (librdkafka, pika, kombu/amqp, Celery, Dramatiq) into the run's log file, not the terminal.

A broker restart makes every client in the harness complain for seconds
("Connect to ipv4#127.0.0.1:9092 failed: Connection refused", pika's
reconnects); that belongs in ``<run>/logs/clients.log``. The terminal gets one
line per cell instead, from ``Outage``: how long each broker was unreachable
as the clients saw it ("Kafka unreachable for 6.2 s during broker-restart").
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def client_loggers() -> dict[str, str]:
    """logger name -> the broker it speaks of: what every registered stack declares (``Stack.client_loggers``;
    e.g. kafka_app.clients routes librdkafka into "kafka_app.rdkafka"). A logger two stacks declare counts for
    the first registered (kombu's own logger: the Celery-on-RabbitMQ column's)."""
    from queuekit.stacks.registry import load_stack, stack_names

    found: dict[str, str] = {}
    for name in stack_names():
        cls = load_stack(name)
        for logger in cls.client_loggers:
            found.setdefault(logger, cls.capabilities.broker)
    return found

# rstream's reconnect loop logs through the ROOT logger (``logging.error`` in rstream/recovery.py, which also
# installs a stderr handler): its records are told apart by the file they come from.
ROOT_LOGGING_CLIENTS = {"/rstream/": "rabbitmq"}
SHOWN = {"rabbitmq": "RabbitMQ", "kafka": "Kafka"}  # per broker component (queuekit/brokers), not per stack
UNREACHABLE = ("Connection refused", "Connect to", "all brokers are down", "brokers are down",
               "Connection reset", "StreamLostError", "AMQPConnectionError", "ConnectionClosed",
               "Connection to broker lost", "Disconnected")
# ...except a client closing its own connection: pika logs "ConnectionClosedByClient: (200) 'Normal shutdown'"
# on every clean close, which matched "ConnectionClosed" and reported a healthy broker as refusing connections.
OWN_CLOSE = ("Normal shutdown", "ConnectionClosedByClient")


def late_loggers() -> tuple[str, ...]:
    """Loggers kept in the file, never counted as an outage: what the stacks declare as
    ``late_client_loggers`` (kombu keeps its Kafka producers after a cell and librdkafka delivers their lines
    when one is next used, so Celery-on-Kafka's broker-restart lines arrived during the NEXT Kafka cell and
    were reported as an outage "not injected" there)."""
    from queuekit.stacks.registry import load_stack, stack_names

    return tuple(dict.fromkeys(logger for name in stack_names() for logger in load_stack(name).late_client_loggers))


@dataclass
class Outage(logging.Handler):
    """Per broker ("kafka", "rabbitmq": a stack's broker): first and last time a client logged it could not reach it."""

    seen: dict[str, list[float]] = field(default_factory=dict)  # broker -> [first, last, count]
    loggers: dict[str, str] = field(default_factory=client_loggers)  # logger name -> broker
    late: tuple[str, ...] = field(default_factory=late_loggers)  # to the file only: their lines arrive late

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.DEBUG)

    def __hash__(self) -> int:  # logging keeps handlers in sets/lists by identity
        return id(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(self.late):
            return
        text = record.getMessage()
        if any(marker in text for marker in UNREACHABLE) and not any(own in text for own in OWN_CLOSE):
            broker = next((b for name, b in self.loggers.items() if record.name.startswith(name)), None) or \
                next((b for path, b in ROOT_LOGGING_CLIENTS.items() if path in record.pathname), "a broker")
            first_last_count = self.seen.setdefault(broker, [record.created, record.created, 0])
            first_last_count[1:] = [record.created, first_last_count[2] + 1]

    def reset(self, broker: str | None = None) -> None:
        """Forget what was seen (of one broker: cells of different brokers run side by side)."""
        if broker is None:
            self.seen.clear()
        else:
            self.seen.pop(broker, None)

    def summary(self, during: str, injected: bool, broker: str | None = None) -> list[str]:
        """One line per broker (or for ``broker``) the clients could not reach during ``during``."""
        lines = []
        for b, (first, last, count) in sorted(self.seen.items()):
            if broker not in (None, b):
                continue
            # librdkafka's log lines reach Python when the client is next polled, all at once: their times
            # say when they were served, not when the connection failed, so a span near 0 is not reported.
            span = f"unreachable for {last - first:.1f} s" if last - first >= 0.5 else "refused connections"
            lines.append(f"{SHOWN.get(b, b)} {span} during {during} ({count} client log lines)"
                         + (", as injected" if injected else ": not injected, see the clients log"))
        return lines


@contextmanager
def to_file(path: Path) -> Iterator[Outage]:
    """Route the client loggers to ``path`` (and away from stderr) while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    outage = Outage()
    saved = []
    for name in outage.loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.level))
        logger.addHandler(file_handler)
        logger.addHandler(outage)
        logger.propagate = False  # nothing reaches the root logger or Python's last-resort stderr handler
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)

    def divert(record: logging.LogRecord) -> bool:  # a client's record on the root logger: to the file only
        if any(path in record.pathname for path in ROOT_LOGGING_CLIENTS):
            file_handler.handle(record)
            outage.handle(record)
            return False
        return True

    root = logging.getLogger()
    root.addFilter(divert)
    try:
        yield outage
    finally:
        root.removeFilter(divert)
        for logger, propagate, level in saved:
            logger.removeHandler(file_handler)
            logger.removeHandler(outage)
            logger.propagate, logger.level = propagate, level
        file_handler.close()

