"""Addendum A of semi-real protocol v2: why CF scores below the linear baseline.

Two variants, each one setting away from a model of the main table
(``benchmarks/SEMIREAL_PROTOCOL_V2.md``, "Addendum A", fixed before these runs):
``cf-nopos`` (CF without the sinusoidal positions) and ``linear-pos`` (the linear
baseline with them). Observation model 1, v = 1, real labels and the control, seeds
0-4, the main table's CPU budget and stopping rule. Each run is paired with the
recorded run of the same seed and condition (the data are rebuilt from the seed).
The record is rewritten atomically after every run; a rerun skips the runs in it::

    OMP_NUM_THREADS=1 python benchmarks/bench_semireal_v2_cf_linear.py \\
        --annotations ../shared/data/multithumos \\
        --out benchmarks/results/semireal_v2_cf_linear.json
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


def train(root: Path, key: str, model: str, options: dict[str, Any], seed: int,
          runs_dir: Path) -> dict[str, Any]:
    """One run: the protocol's budget and stopping rule, ``options`` on top."""
    run_dir = runs_dir / key.replace("/", "-")
    shutil.rmtree(run_dir, ignore_errors=True)
    config = v2.train_config("multithumos", root, model, seed,
                             v2.PROTOCOL["budgets"]["cpu"], "cpu", run_dir, options)
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
    }
    shutil.rmtree(run_dir, ignore_errors=True)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotations", type=Path, required=True,
                        help="the MultiTHUMOS annotation folder")
    parser.add_argument("--out", type=Path, required=True, help="the JSON record")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args(argv)
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
                if key in record["runs"]:
                    continue
                spec = {"visibility": 1.0, "seed": seed, "obs_model": "m1"}
                obs, _ = v2.observation(spec, v2.PROTOCOL["observation"])
                root = semireal.condition_root("multithumos", args.annotations, obs,
                                               condition, None, None)
                started = datetime.now(timezone.utc).isoformat(timespec="seconds")
                r = train(root, key, model, options, seed, runs_dir)
                r.update(variant=variant, condition=condition, seed=seed,
                         library=state, machine=host, started=started)
                record["runs"][key] = r
                print(f"{key:<34s} f-mAP {r['frame_map']:6.2f}  ({r['ended_by']}, "
                      f"{r['steps']} steps, {r['seconds']:.0f} s)", flush=True)
                v2.write_record(args.out, record)
    if runs_dir.is_dir() and not any(runs_dir.iterdir()):
        runs_dir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
