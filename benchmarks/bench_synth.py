"""Does dependency modelling matter on the embedded dataset? The calibration benchmark.

Trains the linear baseline, the CF baseline, CB-only, TB-only and MLAD with the book's
``synthetic`` preset on several seeds (each seed draws a new dataset *and* a new
initialisation), evaluates each on its test split, and prints frame mAP and the
action-conditional mAP at tau = 0 and 20 (mean and standard deviation over seeds). It then
checks the calibration the project promises (issue 4):

* frame mAP orders linear < CF < CB-only, TB-only < MLAD, at least 3 points apart at each step;
* MLAD's mAP_AC at tau = 0 and at tau = 20 beats CF's by at least 5 points.

Results go to ``benchmarks/results/synth_models.json`` (read by the book). Runs are cached
(``mladlib.train.cached_train``), so a re-run only prints. Usage::

    python benchmarks/bench_synth.py [--seeds 0 1 2] [--out benchmarks/results/synth_models.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from mladlib.train import cached_train, make_config
from mladlib.utils import cpu_name

MODELS = ("linear", "cf", "cb", "tb", "mlad")
LABELS = {"linear": "Linear (I3D)", "cf": "CF", "cb": "CB only", "tb": "TB only", "mlad": "MLAD"}




def run(seeds: list[int], models: tuple[str, ...] = MODELS, log=print) -> dict:
    """Train (or load) every model on every seed; return per-seed scores and timings."""
    results: dict[str, dict[str, list[float]]] = {m: {"frame_map": [], "ac0": [], "ac20": [], "seconds": []}
                                                  for m in models}
    for seed in seeds:
        for name in models:
            start = time.perf_counter()
            result = cached_train(make_config("synthetic", model=name, seed=seed, synthetic_seed=seed))
            seconds = time.perf_counter() - start
            test = result.test_metrics
            results[name]["frame_map"].append(100 * test["frame_map"])
            results[name]["ac0"].append(100 * test["action_conditional"][0]["mAP_AC"])
            results[name]["ac20"].append(100 * test["action_conditional"][20]["mAP_AC"])
            results[name]["seconds"].append(seconds)
            log(f"seed {seed} {name:<7s} f-mAP {results[name]['frame_map'][-1]:6.2f}  "
                f"mAP_AC(0) {results[name]['ac0'][-1]:6.2f}  mAP_AC(20) {results[name]['ac20'][-1]:6.2f}  "
                f"({seconds:.0f} s, cached runs load in about 0 s)")
    return results


def checks(results: dict) -> list[tuple[str, bool]]:
    """The calibration promises, each as (description, holds) on the means over seeds."""
    mean = {m: {k: float(np.mean(v)) for k, v in r.items()} for m, r in results.items()}
    f = {m: mean[m]["frame_map"] for m in mean}
    return [
        ("CF - linear >= 3 (f-mAP)", f["cf"] - f["linear"] >= 3),
        ("CB-only - CF >= 3 (f-mAP)", f["cb"] - f["cf"] >= 3),
        ("TB-only - CF >= 3 (f-mAP)", f["tb"] - f["cf"] >= 3),
        ("MLAD - CB-only >= 3 (f-mAP)", f["mlad"] - f["cb"] >= 3),
        ("MLAD - TB-only >= 3 (f-mAP)", f["mlad"] - f["tb"] >= 3),
        ("MLAD - CF >= 5 (mAP_AC, tau = 0)", mean["mlad"]["ac0"] - mean["cf"]["ac0"] >= 5),
        ("MLAD - CF >= 5 (mAP_AC, tau = 20)", mean["mlad"]["ac20"] - mean["cf"]["ac20"] >= 5),
    ]


def table(results: dict) -> str:
    lines = [f"{'model':<14s} {'f-mAP':>14s} {'mAP_AC tau=0':>14s} {'mAP_AC tau=20':>14s} {'train s':>8s}"]
    for name, r in results.items():
        cells = [f"{np.mean(r[k]):6.2f} +- {np.std(r[k]):4.2f}" for k in ("frame_map", "ac0", "ac20")]
        lines.append(f"{LABELS.get(name, name):<14s} " + " ".join(f"{c:>14s}" for c in cells)
                     + f" {np.mean(r['seconds']):8.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "synth_models.json")
    args = parser.parse_args(argv)
    results = run(args.seeds)
    config = make_config("synthetic").to_dict()
    machine = f"{cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, Python {platform.python_version()}"
    print()
    print(f"Embedded dataset, synthetic preset, seeds {args.seeds} (mean +- std over seeds); {machine}; {date.today()}")
    print(table(results))
    verdicts = checks(results)
    for text, ok in verdicts:
        print(f"  [{'ok' if ok else 'FAILED'}] {text}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": "python benchmarks/bench_synth.py --seeds " + " ".join(map(str, args.seeds)),
        "date": str(date.today()), "machine": machine, "seeds": args.seeds,
        "preset": {k: config[k] for k in ("hidden_dim", "num_layers", "window", "batch_size", "lr", "epochs", "dropout")},
        "results": results, "checks": {text: ok for text, ok in verdicts},
    }, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
