"""Time and memory of MLAD against the CT x CT baseline as C and T grow (chapter 3).

One forward + backward pass of a one-layer model (class features and classifiers
included, the same for both models) is measured by
:func:`mladlib.profiling.attention_cost` at every size of two sweeps: ``C`` grows at a
fixed ``T``, then ``T`` grows at a fixed ``C``. Each model runs with two attention
kernels: ``math`` (SDPA's explicit backend, which stores the score matrix) and ``fused``
(SDPA's own choice). Torch runs on one thread and the time is the least thread CPU time
of ``--repeats`` passes after a warm-up (see ``mladlib.profiling``), so another job on
the machine slows the measurement less than it would wall time.

The record (JSON, written atomically) names the machine; chapter 3 plots it and checks
its claims about time against it, since timings taken while the book runs depend on the
reader's machine and its load. Usage::

    python benchmarks/bench_cost.py                       # the chapter's sweep
    python benchmarks/bench_cost.py --quick --out /tmp/cost.json   # tiny: tests the script
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from mladlib.profiling import attention_cost, loglog_slope
from mladlib.utils import atomic_path, cpu_name

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "attention_cost_cpu.json"
VARIANTS = {  # label -> (model, kernel)
    "MLAD, fused": ("mlad", "fused"),
    "MLAD, explicit": ("mlad", "math"),
    "CT x CT, explicit": ("full", "math"),
    "CT x CT, fused": ("full", "fused"),
}
SWEEPS = {"C": [8, 16, 32, 64], "T": [16, 32, 64, 128]}
FIXED = {"C": 16, "T": 32}  # T while C grows, C while T grows
QUICK_SWEEPS = {"C": [4, 8], "T": [8, 16]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON record to write")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per size (the least is kept)")
    parser.add_argument("--hidden-dim", type=int, default=32, help="H")
    parser.add_argument("--batch", type=int, default=2, help="windows per pass")
    parser.add_argument("--feature-dim", type=int, default=32, help="F")
    parser.add_argument("--quick", action="store_true", help="two tiny sizes per sweep, one repeat")
    args = parser.parse_args(argv)
    for name in ("repeats", "hidden_dim", "batch", "feature_dim"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sweeps = QUICK_SWEEPS if args.quick else SWEEPS
    repeats = 1 if args.quick else args.repeats
    common = dict(H=args.hidden_dim, B=args.batch, F=args.feature_dim, L=1, repeats=repeats, threads=1)
    started = time.perf_counter()
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for label, (model, kernel) in VARIANTS.items():
        results[label] = {
            "C": [attention_cost(model, c, FIXED["T"], kernel=kernel, **common) for c in sweeps["C"]],
            "T": [attention_cost(model, FIXED["C"], t, kernel=kernel, **common) for t in sweeps["T"]],
        }
        slopes = {
            axis: loglog_slope(sweeps[axis], [r["cpu_ms"] for r in rows]) for axis, rows in results[label].items()
        }
        print(f"{label:<20} CPU-time slope vs C {slopes['C']:.2f}, vs T {slopes['T']:.2f}", flush=True)
    record = {
        "what": "one forward + backward pass of a one-layer model, MLAD vs CT x CT (chapter 3)",
        "command": "python benchmarks/bench_cost.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "settings": {**{k: v for k, v in common.items()}, "fixed": FIXED, "time": "least thread CPU time (ms)"},
        "sweeps": sweeps,
        "variants": {label: list(v) for label, v in VARIANTS.items()},
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    with atomic_path(args.out, suffix=".json") as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({record['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
