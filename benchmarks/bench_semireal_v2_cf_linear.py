"""Addendum A of semi-real protocol v2: why CF scores below the linear baseline.

Two variants, each one setting away from a model of the main table
(``benchmarks/SEMIREAL_PROTOCOL_V2.md``, "Addendum A", fixed before these runs):
``cf-nopos`` (CF without the sinusoidal positions) and ``linear-pos`` (the linear
baseline with them). Observation model 1, v = 1, real labels and the control, seeds
0-4, the main table's CPU budget and stopping rule. Each run is paired with the
recorded run of the same seed and condition (the data are rebuilt from the seed).
The record is rewritten atomically after every run; a rerun skips the runs in it.
Where over 1 in 5 runs of a variant end at the cap, the protocol's rule doubles the cap
and reruns only those runs (``--redo-capped``), each replacing its run and keeping the
first run's outcome (``first_run_at_cap``)::

    OMP_NUM_THREADS=1 python benchmarks/bench_semireal_v2_cf_linear.py \\
        --annotations ../shared/data/multithumos \\
        --out benchmarks/results/semireal_v2_cf_linear.json
    OMP_NUM_THREADS=1 python benchmarks/bench_semireal_v2_cf_linear.py \\
        --annotations ../shared/data/multithumos \\
        --out benchmarks/results/semireal_v2_cf_linear.json \\
        --redo-capped linear-pos --cap-steps 6000
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_semireal_v2 as v2  # noqa: E402
from records import library_state  # noqa: E402

from mladlib import semireal  # noqa: E402
from mladlib.semireal_analysis import run_key  # noqa: E402

#: variant -> (the recorded model it departs from, the one setting that differs)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "cf-nopos": ("cf", {"positional_encoding": False}),
    "linear-pos": ("linear", {"positional_encoding": True}),
}
SEEDS = (0, 1, 2, 3, 4)
BUDGET_CAP = v2.PROTOCOL["budgets"]["cpu"]["cap_steps"]  # the first runs' cap


def train(root: Path, key: str, model: str, options: dict[str, Any], seed: int,
          runs_dir: Path, cap_steps: int | None = None) -> dict[str, Any]:
    """One run: the protocol's budget and stopping rule, ``options`` on top;
    ``cap_steps``: the doubled cap of the protocol's rule (None: the budget's)."""
    run_dir = runs_dir / key.replace("/", "-")
    shutil.rmtree(run_dir, ignore_errors=True)
    budget = dict(v2.PROTOCOL["budgets"]["cpu"])
    if cap_steps is not None:
        budget["cap_steps"] = cap_steps
    config = v2.train_config("multithumos", root, model, seed, budget, "cpu", run_dir,
                             options)
    start = time.perf_counter()
    result = v2._NoStandardTrainer(config).fit()
    if result.stopped is not None:
        raise SystemExit(f"{key} stopped by {result.stopped}; give the command again")
    record = {
        "frame_map": 100 * result.test_metrics["frame_map"],
        "ended_by": result.ended_by,
        "steps": result.steps,
        "best_val_frame_map": 100 * result.best_val_frame_map,
        "validation_curve": [
            {"step": e["step"], "val_frame_map": 100 * e["val_frame_map"]}
            for e in result.history if e["val_frame_map"] is not None],
        "seconds": time.perf_counter() - start,
        "cap_steps": budget["cap_steps"],
    }
    shutil.rmtree(run_dir, ignore_errors=True)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotations", type=Path, required=True,
                        help="the MultiTHUMOS annotation folder")
    parser.add_argument("--out", type=Path, required=True, help="the JSON record")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--redo-capped", choices=sorted(VARIANTS), metavar="VARIANT",
                        help="rerun this variant's runs that ended at the cap, with "
                        "--cap-steps (the protocol's rule when over 1 in 5 hit it)")
    parser.add_argument("--cap-steps", type=int,
                        help="the doubled cap for --redo-capped")
    args = parser.parse_args(argv)
    if (args.redo_capped is None) != (args.cap_steps is None):
        parser.error("--redo-capped and --cap-steps go together")
    every = v2.PROTOCOL["budgets"]["cpu"]["check_every_steps"]
    if args.cap_steps is not None and (args.cap_steps <= 0 or args.cap_steps % every):
        parser.error(f"--cap-steps {args.cap_steps}: a positive multiple of the "
                     f"checks' {every} steps, please")
    record = (json.loads(args.out.read_text()) if args.out.is_file() else
              {"addendum": "A", "variants": {k: {"from": m, "options": o}
                                             for k, (m, o) in VARIANTS.items()},
               "budget": "cpu", "runs": {}})
    state, host = library_state(), v2.machine("cpu")
    runs_dir = args.out.with_name(args.out.stem + ".runs")
    for seed in args.seeds:
        for condition in v2.PROTOCOL["conditions"]:
            for variant, (model, options) in VARIANTS.items():
                key = run_key("m1", condition, 1.0, variant, seed)
                first = record["runs"].get(key)
                redo = (variant == args.redo_capped and first is not None
                        and first["ended_by"] == "cap"
                        and first.get("cap_steps", BUDGET_CAP) < args.cap_steps)
                if first is not None and not redo:
                    continue
                spec = {"visibility": 1.0, "seed": seed, "obs_model": "m1"}
                obs, _ = v2.observation(spec, v2.PROTOCOL["observation"])
                root = semireal.condition_root("multithumos", args.annotations, obs,
                                               condition, None, None)
                started = datetime.now(timezone.utc).isoformat(timespec="seconds")
                r = train(root, key, model, options, seed, runs_dir,
                          args.cap_steps if redo else None)
                r.update(variant=variant, condition=condition, seed=seed,
                         library=state, machine=host, started=started)
                if redo:  # the run it replaces, as the rule keeps it
                    r["first_run_at_cap"] = v2.first_run_at_cap(first, BUDGET_CAP)
                record["runs"][key] = r
                print(f"{key:<34s} f-mAP {r['frame_map']:6.2f}  ({r['ended_by']}, "
                      f"{r['steps']} steps, {r['seconds']:.0f} s)", flush=True)
                v2.write_record(args.out, record)
    if runs_dir.is_dir() and not any(runs_dir.iterdir()):
        runs_dir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
