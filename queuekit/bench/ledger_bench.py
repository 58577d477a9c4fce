"""How fast can workers write to the ledger?  ``python -m queuekit.ledger_bench``

Each writer process applies ``--per-writer`` guarded effects with distinct
keys (one transaction each, like a worker would) to a fresh ledger in a
temporary directory. Printed: effects/s over all writers, for 1 and 4 writers
by default. If the ledger is far faster than the brokers, it does not skew
the msgs/s the kit reports.
"""
from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

from queuekit.core.ledger import Ledger


def write(ledger: Ledger, writer: int, n: int, start_together) -> None:
    start_together.wait()
    for i in range(n):
        key = f"w{writer}-{i}"
        ledger.apply_effect(
            "bench", key, workload="bench", message_id=key, worker=f"bench-{writer}", payload={"i": i}, seq=i
        )


def effects_per_second(writers: int, per_writer: int, directory: Path) -> float:
    ledger = Ledger(directory / f"bench-{writers}.sqlite3")
    ledger.reset()  # creates the file and schema before the clock starts
    ctx = multiprocessing.get_context("fork")
    start_together = ctx.Barrier(writers + 1)
    procs = [ctx.Process(target=write, args=(ledger, w, per_writer, start_together)) for w in range(writers)]
    for proc in procs:
        proc.start()
    start_together.wait()
    started = time.perf_counter()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    if any(proc.exitcode != 0 for proc in procs) or ledger.count("effects") != writers * per_writer:
        raise SystemExit(f"{writers} writers: a writer failed or effects are missing")
    return writers * per_writer / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--per-writer", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="queuekit-ledger-bench-") as tmp:
        for writers in args.writers:
            rate = effects_per_second(writers, args.per_writer, Path(tmp))
            print(f"{writers} writer process(es) x {args.per_writer} effects: {rate:,.0f} effects/s")


if __name__ == "__main__":
    main()
