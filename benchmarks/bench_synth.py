"""Does dependency modelling matter on the embedded dataset? The calibration benchmark.

Trains the linear baseline, the CF baseline, CB-only, TB-only and MLAD with the book's
``synthetic`` preset on several seeds (each seed draws a new dataset *and* a new
initialisation), evaluates each on its test split, and prints frame mAP and the
action-conditional mAP at tau = 0 and 20 (mean and standard deviation over seeds). It then
checks the calibration the project promises (issue 4):

* frame mAP orders linear < CF < CB-only, TB-only < MLAD, at least 3 points apart at each step;
* MLAD's mAP_AC at tau = 0 and at tau = 20 beats CF's by at least 5 points.

Results go to ``benchmarks/results/synth_models.json`` (read by the book). Runs are
cached (``mladlib.train.cached_train``), so a re-run only prints (and an interrupted
``--converge`` continues from the runs it finished). ``--converge`` trains the same
models under the stopping rule of ``benchmarks/CONVERGENCE_PROTOCOL.md``
(:data:`CONVERGE`: validation every epoch, stop after ``patience`` validations without
a new best, at most ``epochs``; one torch thread) and writes
``benchmarks/results/synth_models_converged.json`` beside the fixed-budget record, with
every run's stopping outcome and validation curve. Usage::

    python benchmarks/bench_synth.py [--seeds 0 1 2] \\
        [--out benchmarks/results/synth_models.json]
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_synth.py --converge
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

from mladlib.convergence import all_stops, stopping_summary
from mladlib.train import cached_train, make_config
from mladlib.train.cache import cached_run_dir
from mladlib.utils import atomic_path, cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import library_state  # noqa: E402  (also bench_ablations')

MODELS = ("linear", "cf", "cb", "tb", "mlad")
LABELS = {
    "linear": "Linear (I3D)",
    "cf": "CF",
    "cb": "CB only",
    "tb": "TB only",
    "mlad": "MLAD",
}
RESULTS = Path(__file__).parent / "results"
DEFAULT_OUT = RESULTS / "synth_models.json"
CONVERGED_OUT = RESULTS / "synth_models_converged.json"
#: The stopping rule of benchmarks/CONVERGENCE_PROTOCOL.md, as overrides of the
#: synthetic preset (which validates after every epoch): stop after ``patience``
#: validations without a new best validation f-mAP, at most ``epochs`` epochs; one torch
#: thread (two processes share two cores). Fixed before any converged run.
CONVERGE: dict[str, int] = {"patience": 8, "epochs": 150, "num_threads": 1}


def stopping_record(config, result) -> dict:
    """How a run ended (its ``results.json`` in the run cache: a cached run's RunResult
    does not carry it), its steps, best epoch and validation f-mAP after every epoch
    (x100)."""
    saved = cached_run_dir(config) / "results.json"
    ended_by = (
        json.loads(saved.read_text()).get("ended_by")
        if saved.is_file()
        else result.ended_by
    )
    curve = [
        [e["epoch"], e["step"], 100 * e["val_frame_map"]]
        for e in result.history
        if e.get("val_frame_map") is not None
    ]
    return {
        "ended_by": ended_by,
        "steps": result.steps,
        "best_epoch": result.best_epoch,
        "val_curve": curve,
    }


def run(
    seeds: list[int],
    models: tuple[str, ...] = MODELS,
    log=print,
    overrides: dict | None = None,
) -> dict:
    """Train (or load) every model on every seed; return per-seed scores and timings
    (and, with ``overrides``, e.g. :data:`CONVERGE`, each run's
    :func:`stopping_record`)."""
    keys = ["frame_map", "ac0", "ac20", "seconds", "train_seconds"]
    keys += ["stopping"] if overrides else []
    results: dict[str, dict[str, list]] = {m: {k: [] for k in keys} for m in models}
    for seed in seeds:
        for name in models:
            start = time.perf_counter()
            config = make_config(
                "synthetic",
                model=name,
                seed=seed,
                synthetic_seed=seed,
                **(overrides or {}),
            )
            result = cached_train(config)
            seconds = time.perf_counter() - start
            test = result.test_metrics
            results[name]["frame_map"].append(100 * test["frame_map"])
            results[name]["ac0"].append(100 * test["action_conditional"][0]["mAP_AC"])
            results[name]["ac20"].append(100 * test["action_conditional"][20]["mAP_AC"])
            results[name]["seconds"].append(seconds)
            # when it was trained, cached or not
            results[name]["train_seconds"].append(result.history[-1]["elapsed_s"])
            if overrides:
                results[name]["stopping"].append(stopping_record(config, result))
            r = results[name]
            log(
                f"seed {seed} {name:<7s} f-mAP {r['frame_map'][-1]:6.2f}  "
                f"mAP_AC(0) {r['ac0'][-1]:6.2f}  mAP_AC(20) {r['ac20'][-1]:6.2f}  "
                f"({seconds:.0f} s, cached runs load in about 0 s)"
            )
    return results


def checks(results: dict) -> list[tuple[str, bool]]:
    """The calibration promises, each as (description, holds) on the means over seeds."""
    mean = {m: {k: float(np.mean(r[k])) for k in ("frame_map", "ac0", "ac20")}
            for m, r in results.items()}
    f = {m: mean[m]["frame_map"] for m in mean}
    return [
        ("CF - linear >= 3 (f-mAP)", f["cf"] - f["linear"] >= 3),
        ("CB-only - CF >= 3 (f-mAP)", f["cb"] - f["cf"] >= 3),
        ("TB-only - CF >= 3 (f-mAP)", f["tb"] - f["cf"] >= 3),
        ("MLAD - CB-only >= 3 (f-mAP)", f["mlad"] - f["cb"] >= 3),
        ("MLAD - TB-only >= 3 (f-mAP)", f["mlad"] - f["tb"] >= 3),
        (
            "MLAD - CF >= 5 (mAP_AC, tau = 0)",
            mean["mlad"]["ac0"] - mean["cf"]["ac0"] >= 5,
        ),
        (
            "MLAD - CF >= 5 (mAP_AC, tau = 20)",
            mean["mlad"]["ac20"] - mean["cf"]["ac20"] >= 5,
        ),
    ]


def table(results: dict) -> str:
    lines = [
        f"{'model':<14s} {'f-mAP':>14s} {'mAP_AC tau=0':>14s} {'mAP_AC tau=20':>14s} {'train s':>8s}"
    ]
    for name, r in results.items():
        cells = [
            f"{np.mean(r[k]):6.2f} +- {np.std(r[k]):4.2f}"
            for k in ("frame_map", "ac0", "ac20")
        ]
        if "stopping" in r:  # converged: sample SD (ddof 1), as CONVERGENCE_PROTOCOL.md
            keys = ("frame_map", "ac0", "ac20")
            sd = {k: np.std(r[k], ddof=1) if len(r[k]) > 1 else 0.0 for k in keys}
            cells = [f"{np.mean(r[k]):6.2f} +- {sd[k]:4.2f}" for k in keys]
        lines.append(
            f"{LABELS.get(name, name):<14s} "
            + " ".join(f"{c:>14s}" for c in cells)
            + f" {np.mean(r.get('train_seconds', r['seconds'])):8.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"default: {DEFAULT_OUT} ({CONVERGED_OUT} with --converge)",
    )
    parser.add_argument(
        "--converge",
        action="store_true",
        help="train to the stopping rule of "
        "CONVERGENCE_PROTOCOL.md (never written over the fixed-budget record)",
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--cap",
        type=int,
        default=None,
        help="with --converge: another epoch cap, "
        f"to test the script (the protocol's: {CONVERGE['epochs']})",
    )
    args = parser.parse_args(argv)
    out = args.out or (CONVERGED_OUT if args.converge else DEFAULT_OUT)
    overrides = (
        dict(CONVERGE, **({"epochs": args.cap} if args.cap else {}))
        if args.converge
        else None
    )
    if args.converge and out.resolve() == DEFAULT_OUT.resolve():
        parser.error(
            f"--converge must not replace the fixed-budget record {DEFAULT_OUT}"
        )
    if args.cap and not args.converge:
        parser.error("--cap goes with --converge")
    results = run(args.seeds, tuple(args.models), overrides=overrides)
    config = make_config("synthetic", **(overrides or {})).to_dict()
    threads = config["num_threads"] or torch.get_num_threads()
    machine = (
        f"{cpu_name()}, {threads} torch threads, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )
    spread = "mean +- sample SD" if args.converge else "mean +- std"
    print()
    seeds = " ".join(map(str, args.seeds))
    print(f"Embedded dataset, synthetic preset, seeds {seeds} ({spread} over seeds); "
          f"{machine}; {date.today()}")
    print(table(results))
    verdicts = checks(results) if set(results) == set(MODELS) else []
    for text, ok in verdicts:
        print(f"  [{'ok' if ok else 'FAILED'}] {text}")
    if args.converge:
        ends = stopping_summary(all_stops(results))
        print(f"stopping: {ends.plateau} runs by the rule, {ends.cap} at the cap")
    command = "python benchmarks/bench_synth.py --seeds " + " ".join(
        map(str, args.seeds)
    )
    command += " --converge" if args.converge else ""
    content = {
        "command": command,
        "date": str(date.today()),
        "machine": machine,
        "seeds": args.seeds,
        "preset": {
            k: config[k]
            for k in (
                "hidden_dim",
                "num_layers",
                "window",
                "batch_size",
                "lr",
                "epochs",
                "dropout",
            )
        },
        "results": results,
        "checks": {text: ok for text, ok in verdicts},
    }
    if args.converge:
        content.update(
            stopping_rule=overrides,
            protocol="benchmarks/CONVERGENCE_PROTOCOL.md",
            library=library_state(),
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".json") as tmp:
        tmp.write_text(json.dumps(content, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
