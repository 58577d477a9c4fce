"""Inside a worker process: who am I, where do I record, how was I started — read once.

The stack that spawns a worker puts three things in its environment: the
worker's name (``QUEUEKIT_WORKER_NAME``), the ledger's path
(``QUEUEKIT_LEDGER``), the options (``QUEUEKIT_STACK_OPTIONS``) and whether
fault directives are honoured (``QUEUEKIT_FAULTS``, ``faults_enabled``). Every
app package reads them through ``this_worker()`` instead of its own
``os.environ`` lookups, so a worker started by hand gets the same defaults
everywhere and the same clear error when the ledger is missing.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from .ledger import Ledger
from .options import StackOptions, options_from_env

NAME_ENV = "QUEUEKIT_WORKER_NAME"
FAULTS_ENV = "QUEUEKIT_FAULTS"  # "1": honour the harness's fault directives (set by Stack.new_pool only)


def faults_enabled() -> bool:
    """Did the harness start this worker to act out fault directives? Off unless it said so.

    A worker started any other way (by hand, by a deployment) ignores ``fault`` and
    ``idempotency`` headers: otherwise anyone who can publish could make it exit, sleep,
    burn CPU or skip the idempotency guard.
    """
    return os.environ.get(FAULTS_ENV) == "1"


@dataclass(frozen=True)
class WorkerEnv:
    name: str  # "celery-0": the stack's prefix and the worker's index
    options: StackOptions

    @functools.cached_property
    def ledger(self) -> Ledger:
        return Ledger()  # QUEUEKIT_LEDGER; raises naming the variable when it is not set


@functools.lru_cache(maxsize=1)
def this_worker(default_name: str = "manual") -> WorkerEnv:
    return WorkerEnv(name=os.environ.get(NAME_ENV) or f"{default_name}-{os.getpid()}", options=options_from_env())
