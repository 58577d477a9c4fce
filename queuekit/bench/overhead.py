"""Harness overhead alone: each stack against its bare twin, nothing else (a few minutes, not ``queuekit bench``'s 15).

    python -m queuekit.bench.overhead                      # celery, dramatiq, kafka; noop; 3 repeats
    python -m queuekit.bench.overhead --stack kafka --repeats 5 --mode io

The same measurement as ``queuekit bench``'s first table (``stack_vs_bare``:
interleaved stack/bare backlogs, steady-state rate, worker CPU per message),
without the references, curves and latency. Prints one line per stack and
writes ``OUT/overhead-<stamp>.json`` with the load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from queuekit.bench import BenchConfig, calibrate, fairness, machine, measure, stack_vs_bare
from queuekit.core.config import Settings
from queuekit.core.envelope import encode
from queuekit.stacks.registry import load_stack, stack_names


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m queuekit.bench.overhead", description=__doc__.splitlines()[0])
    twinned = [name for name in stack_names() if load_stack(name).bare_twin]  # stacks declaring a bare twin
    ap.add_argument("--stack", action="append", choices=twinned, help="repeatable; default: every one with a twin")
    ap.add_argument("--mode", action="append", choices=list(measure.MODES), help="repeatable; default: noop")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("-n", type=int, help="messages per measurement (default: the bench's)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    args = ap.parse_args(argv)
    cfg = replace(BenchConfig(), repeats=args.repeats, stacks=tuple(args.stack or twinned))
    if args.n:
        cfg = replace(cfg, n_min=args.n, n_max=args.n, n_calibrate=0, n_slow=args.n)
    settings, stamp = Settings.from_env(), time.strftime("%Y%m%d-%H%M%S")
    size = len(encode(measure.envelopes(1, "noop", None, 0)[0]))
    result: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_before": os.getloadavg(), "config": {
        "repeats": cfg.repeats, "noop_seconds": cfg.noop_seconds, "n_min": cfg.n_min, "n_max": cfg.n_max,
        "n_slow": cfg.n_slow},
        "machine": machine(settings), "fairness": fairness(cfg, size), "stacks": {}}
    t0 = time.monotonic()
    for stack in cfg.stacks:
        work = args.out / f"work-{stamp}"
        rate = calibrate(settings, cfg, stack, work, print)["rate"]
        for mode in args.mode or ["noop"]:
            r = stack_vs_bare(settings, cfg, stack, mode, work, print, rate)
            result["stacks"].setdefault(stack, {})[mode] = r
            print(line(stack, mode, r), flush=True)
    result.update(seconds=round(time.monotonic() - t0, 1), load_after=os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"overhead-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"load average {result['load_before'][0]:.1f} before, {result['load_after'][0]:.1f} after;"
          f" {result['seconds']:.0f} s; {path}")
    return result


def line(stack: str, mode: str, r: dict) -> str:
    st, bw = r["stack"], r["bare"]
    return (f"{stack:9} {mode:5} msgs/s stack {st['rate']['median']:>9,.0f} ({st['rate']['min']:,.0f}–"
            f"{st['rate']['max']:,.0f}) bare {bw['rate']['median']:>9,.0f} ({bw['rate']['min']:,.0f}–"
            f"{bw['rate']['max']:,.0f}) overhead {r['overhead']:.1%} | CPU µs/msg stack {st['cpu_us']['median']:,.1f}"
            f" ({st['cpu_us']['min']:,.1f}–{st['cpu_us']['max']:,.1f}) bare {bw['cpu_us']['median']:,.1f}"
            f" ({bw['cpu_us']['min']:,.1f}–{bw['cpu_us']['max']:,.1f}) overhead {r['overhead_cpu']:.1%}")


if __name__ == "__main__":
    main()
