"""The middleware every Dramatiq broker of the kit runs (RabbitMQ and Redis alike): Dramatiq's defaults,
the kit's retry policy, and a worker that refuses to boot without its ledger."""
from __future__ import annotations

from dramatiq.middleware import Middleware, MiddlewareError, default_middleware
from dramatiq.middleware.retries import Retries

from queuekit.core.options import StackOptions
from queuekit.core.worker_env import this_worker


class RequireLedger(Middleware):
    """A worker without QUEUEKIT_LEDGER would consume and then dead-letter every message ("no ledger
    path"): fail at boot instead, naming the variable (``dramatiq dramatiq_app.actors`` by hand).
    Runs only in workers: a producer never boots a worker."""

    def before_worker_boot(self, broker, worker) -> None:
        try:
            this_worker("dramatiq").ledger  # noqa: B018  raises ValueError naming QUEUEKIT_LEDGER
        except ValueError as exc:
            raise MiddlewareError(str(exc)) from None  # Dramatiq only logs other errors and boots anyway


def kit_middleware(options: StackOptions) -> list[Middleware]:
    # The defaults (AgeLimit, TimeLimit, ShutdownNotifications, Callbacks, Pipelines, Retries); Dramatiq 2.x
    # no longer includes Prometheus, the filter only guards against a version that does (its own HTTP server).
    middleware: list[Middleware] = [m() for m in default_middleware if m.__name__ != "Prometheus" and m is not Retries]
    middleware.insert(0, RequireLedger())
    # [semantics:retries] Dramatiq's Retries middleware: exponential backoff through Q.DQ, then the message is failed
    # to .XQ
    middleware.append(Retries(
        max_retries=options.max_retries,  # not Dramatiq's 20: then the message is failed -> .XQ
        min_backoff=max(1, options.backoff_ms),  # 0 would mean Dramatiq's default 15 s; delay = this * 2**retry * U[1,2)
        max_backoff=max(1, options.backoff_ms) * 2 ** (options.max_retries + 1),  # not 7 days; never caps our curve
    ))
    return middleware
