"""A stack's workers in the foreground, started the framework's own way (``queuekit worker``).

A stack may declare a ``by_hand`` module (``Stack.by_hand``) with
``declare(settings, workloads, options)`` and ``commands(workloads, options,
prefix)``: the framework's own command lines (``celery … worker``,
``dramatiq …``, ``python -m kafka_app.worker …``). This module prepares the
environment those commands need, prints it as shell lines a person can copy,
runs the commands with their output prefixed by worker name, and on Ctrl-C
(or SIGTERM) passes SIGTERM on — every framework's warm shutdown: running
tasks finish and are acked, prefetched ones go back — and waits for them.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from queuekit.core.config import Settings
from queuekit.core.ledger import LEDGER_ENV, Effect, Ledger
from queuekit.core.options import StackOptions, options_env
from queuekit.core.worker_env import NAME_ENV
from queuekit.stacks import manifest
from queuekit.stacks.base import DeadLetter
from queuekit.stacks.declaration import target
from queuekit.stacks.pool import _die_with_parent
from queuekit.stacks.registry import load_stack
from workloads import WORKLOADS

NEWEST = 200  # effects kept per service for the view (the CLI shows the last --limit)
STOP_TIMEOUT = 30.0  # seconds for a warm shutdown before SIGKILL


@dataclass(frozen=True)
class Command:
    name: str  # the worker's name (QUEUEKIT_WORKER_NAME, Celery's --hostname)
    argv: list[str]  # as a person types it: "celery", "dramatiq", "python" first
    env: dict[str, str]  # the kit's variables plus the framework's own

    def shell(self) -> str:
        return " ".join(shlex.quote(a) for a in self.argv)


def default_ledger(settings: Settings, stack: str) -> Path:
    """Where ``stack``'s hand-run workers record their effects unless QUEUEKIT_LEDGER says otherwise: one
    ledger per stack, since the ledger's idempotency key is (service, key) and every stack's signup service
    is "signup": in one shared ledger the same message run on a second stack is absorbed as a duplicate."""
    return settings.home / "by-hand" / f"{stack}.sqlite"


def kit_env(settings: Settings) -> dict[str, str]:
    """The variables that point a process at this kit's brokers (only those set differ from defaults)."""
    names = ("QUEUEKIT_HOME", "QUEUEKIT_PORT_OFFSET", "QUEUEKIT_BROKERS", "QUEUEKIT_AMQP_URL",
             "QUEUEKIT_RABBIT_MGMT_URL", "QUEUEKIT_KAFKA_BOOTSTRAP", "QUEUEKIT_RABBIT_USER", "QUEUEKIT_RABBIT_PASSWORD",
             "QUEUEKIT_RABBIT_VHOST", "QUEUEKIT_RABBIT_STREAM_PORT", "QUEUEKIT_KAFKA_PREFIX",
             "QUEUEKIT_KAFKA_SHARE_PREFIX", "QUEUEKIT_TOPOLOGY", "QUEUEKIT_RABBITMQ_VERSION")
    return {n: os.environ[n] for n in names if os.environ.get(n)}


def prepare(settings: Settings, stack: str, workloads: Sequence[str], options: StackOptions,
            ledger: Path) -> list[Command]:
    """Declare the stack's topology for ``workloads`` and return the commands with their environment."""
    declared = load_stack(stack).by_hand
    if declared is not None:
        by_hand = target(declared)
        # the stack's own setting first (celery_quorum: quorum queues; celery_kafka: the Kafka transport)
        instance = load_stack(stack)(settings, ledger)
        options = instance.prepare_options(options)
        try:
            _declare_switching_types(instance, lambda: by_hand.declare(settings, workloads, options))
        finally:
            instance.stop()
        commands = by_hand.commands(list(workloads), options, f"{stack}-by-hand")
    else:
        options, commands = _through_the_stack(settings, stack, workloads, options, ledger)
    common = {**kit_env(settings), LEDGER_ENV: str(ledger)}
    if options != StackOptions(workers=options.workers):
        common.update(options_env(options))
    return [Command(name, argv, {**common, NAME_ENV: name, **extra}) for name, argv, extra in commands]


def _through_the_stack(settings: Settings, stack: str, workloads: Sequence[str], options: StackOptions,
                       ledger: Path) -> tuple[StackOptions, list[tuple[str, list[str], dict]]]:
    """A stack without a ``by_hand`` module: its own ``declare`` and ``python -m <worker_module>``, as the kit runs it."""
    cls = load_stack(stack)
    instance = cls(settings, ledger)
    instance.workloads, instance.options = tuple(workloads), instance.prepare_options(options)
    try:
        _declare_switching_types(instance, instance.declare)
    finally:
        instance.stop()  # closes the admin connections it opened; no worker was started
    argv = ["python", "-m", cls.worker_module, *workloads]
    return instance.options, [(f"{stack}-by-hand-{i}", argv, {}) for i in range(options.workers)]


def _declare_switching_types(instance, declare) -> None:
    """Declare; if the kit's queues/exchanges of this stack exist with another type (classic <-> quorum),
    RabbitMQ refuses the redeclare (406 PRECONDITION_FAILED): reset every workload of the stack, declare anew.
    On an external broker the stack's names are claimed first (``manifest.claim``): never a foreign object's."""
    manifest.claim(instance.settings, instance.kit_objects(), instance.listed_objects)
    try:
        declare()
    except Exception as exc:  # noqa: BLE001 - only the type-switch case is handled, the rest re-raised
        if "PRECONDITION_FAILED" not in str(exc):
            raise
        instance.reset()  # every workload's (the exchanges are shared), saying what it deletes: dead letters too
        declare()


def describe(commands: Sequence[Command]) -> str:
    """Shell lines to run the same by hand: the environment once, then one command per worker."""
    lines = []
    for cmd in commands:
        lines.append(f"# {cmd.name}")
        lines += [f"export {k}={shlex.quote(v)}" for k, v in cmd.env.items()]
        lines.append(cmd.shell())
    return "\n".join(lines)


def _resolve(argv: list[str]) -> list[str]:
    """``celery``/``dramatiq``/``python`` from this interpreter's environment (the kit's venv)."""
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    beside = Path(sys.executable).parent / argv[0]
    return [str(beside) if beside.exists() else argv[0], *argv[1:]]


def run(commands: Sequence[Command], out: Callable[[str], None] = print) -> int:
    """Run every command, print its lines prefixed ``[name]``, stop them all on Ctrl-C; the worst exit status."""
    procs: list[tuple[Command, subprocess.Popen]] = []
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for cmd in commands:
            proc = subprocess.Popen(_resolve(cmd.argv), env={**os.environ, **cmd.env, "PYTHONUNBUFFERED": "1"},
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace",
                                    start_new_session=True,  # our Ctrl-C handling decides what they get, and when
                                    preexec_fn=_die_with_parent)
            procs.append((cmd, proc))
            threading.Thread(target=_pump, args=(cmd.name, proc, out), daemon=True).start()
        try:
            while any(p.poll() is None for _, p in procs):
                time.sleep(0.2)  # the foreground loop: waiting for Ctrl-C or for the workers to exit
        except KeyboardInterrupt:
            out(f"stopping {len(procs)} worker command(s): warm shutdown (SIGTERM), SIGKILL after {STOP_TIMEOUT:.0f}s")
            _stop(procs)
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(procs)
    codes = [p.returncode for _, p in procs]
    for (cmd, _), code in zip(procs, codes):
        out(f"{cmd.name} exited with {code}")
    return max((abs(c) for c in codes if c), default=0)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt  # SIGTERM to `queuekit worker` stops the workers as Ctrl-C does


def _pump(name: str, proc: subprocess.Popen, out: Callable[[str], None]) -> None:
    for line in proc.stdout or ():
        out(f"[{name}] {line.rstrip()}")


def _stop(procs: Sequence[tuple[Command, subprocess.Popen]]) -> None:
    live = [p for _, p in procs if p.poll() is None]
    for proc in live:
        proc.send_signal(signal.SIGTERM)  # the warm shutdown of Celery, Dramatiq and our Kafka loop
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in live:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the command and whatever it forked (Dramatiq's processes)
            proc.wait(10)


@dataclass(frozen=True)
class ServiceEffects:
    workload: str
    service: str
    effects: int
    duplicates: int  # keys with more than one effect
    newest: list[Effect]


@dataclass(frozen=True)
class EffectsView:
    services: list[ServiceEffects]
    dead_letters: list[tuple[str, DeadLetter]]  # (workload, dead letter)


def effects_view(settings: Settings, ledger: Path, stack: str | None, workloads: Sequence[str]) -> EffectsView:
    """What took effect per service (the ledger, read only if it exists) and, with ``stack``, what its broker
    holds as dead letters for ``workloads`` (``Stack.dead_letters``: the broker's own view)."""
    rows = []
    book = Ledger(ledger) if ledger.exists() else None
    for workload in workloads:
        for service in WORKLOADS[workload].services:
            done = book.effects(service=service) if book else []
            rows.append(ServiceEffects(workload, service, len(done),
                                       len(book.duplicates(service)) if book else 0, done[-NEWEST:]))
    letters: list[tuple[str, DeadLetter]] = []
    if stack is not None:
        instance = load_stack(stack)(settings, ledger)
        try:
            letters = [(w, letter) for w in workloads for letter in instance.dead_letters(w)]
        finally:
            instance.stop()
    if book:
        book.close()
    return EffectsView(rows, letters)
