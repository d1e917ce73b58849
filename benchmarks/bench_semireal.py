"""MLAD on the real dependency structure: real frame labels, simulated features (issue 16).

The protocol (fixed before any result; see ``benchmarks/SEMIREAL_PROTOCOL.md``) is the
constant :data:`PROTOCOL` below. For every seed ``s`` the semi-real dataset is built with
``ObservationModel(visibility=v, seed=s)`` and every model is trained with ``seed=s``
(a new draw of directions, visibilities, noise, validation videos and initialisation).

Stages (the JSON record is rewritten atomically after every run, and a rerun skips the
runs already in it, so an interrupted run continues where it stopped; see
:func:`planned_runs` for the order):

1. ``main``: linear, CF, CB only, TB only and MLAD at the main visibility, every seed;
2. ``sweep``: CF and MLAD at every other visibility level, every seed;
3. ``charades`` (a separate ``--dataset charades`` call): linear, CF and MLAD on the
   first ``max_videos`` videos of each Charades split list, at the main visibility.

Per run it records the test f-mAP, per-class AP, mAP_AC (and P/R/F1_AC) at tau = 0 and
20, the best epoch and the times; for CF and MLAD at the main
visibility also every counted pair's AP(i | j) at tau = 0 and 20 (for "which pairs carry
the gain") and, for MLAD seed 0, each class's mean CB attention row over the test steps
where that class is present. Usage (the exact commands of the protocol)::

    nice -n 10 python benchmarks/bench_semireal.py --dataset multithumos \\
        --annotations ../shared/data/multithumos --out benchmarks/results/semireal_multithumos.json
    nice -n 10 python benchmarks/bench_semireal.py --dataset charades \\
        --annotations ../shared/data/charades --out benchmarks/results/semireal_charades.json
    python benchmarks/bench_semireal.py ... --budget gpu --device cuda --out ..._gpu.json
    python benchmarks/bench_semireal.py --smoke     # embedded data, 1 step: tests the script only
    python benchmarks/bench_semireal.py --smoke --annotations ../shared/data/multithumos   # same, semi-real
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mladlib import semireal, synth
from mladlib.data import load_predictions
from mladlib.metrics import action_conditional_sweep
from mladlib.train import load_splits, make_config
from mladlib.train.trainer import Trainer
from mladlib.utils import atomic_path, cpu_name

PROTOCOL: dict[str, Any] = {
    "version": 1,
    "observation": {"spread": 3.0, "rho": 0.5, "feature_dim": 64},
    "main_visibility": 1.0,
    "sweep_visibilities": [0.5, 1.0, 2.0, 4.0],
    "models": ["linear", "cf", "cb", "tb", "mlad"],
    "sweep_models": ["cf", "mlad"],
    "charades_models": ["linear", "cf", "mlad"],
    "charades_max_videos": 600,
    "pair_models": ["cf", "mlad"],
    "seeds": [0, 1, 2],
    "taus": [0, 20],
    "budgets": {
        # about 200 Adam steps of 8 windows of up to 64 steps: fits 2 CPU cores
        "cpu": dict(hidden_dim=32, num_layers=2, num_heads=1, dropout=0.1, window=64, variable_length=True,
                    length_step=16, batch_size=8, lr=1e-3, weight_decay=0.0, epochs=5, windows_per_epoch=320,
                    eval_every=1, eval_stride=64, eval_batch_size=64, val_fraction=0.1, num_threads=1,
                    in_memory=True),
        # the paper's model size and T, 1,000 steps of 32 windows: for a GPU
        "gpu": dict(hidden_dim=128, num_layers=5, num_heads=1, dropout=0.1, window=128, variable_length=True,
                    length_step=16, batch_size=32, lr=3e-4, weight_decay=1e-6, epochs=20, windows_per_epoch=1600,
                    eval_every=1, eval_stride=64, eval_batch_size=64, val_fraction=0.1, num_threads=4,
                    in_memory=True),
    },
}
MIN_PAIR_SUPPORT = 1  # a pair counts when class i is present on at least one conditioning step


def observation(visibility: float, seed: int) -> semireal.ObservationModel:
    return semireal.ObservationModel(visibility=visibility, seed=seed, **PROTOCOL["observation"])


def planned_runs(dataset: str) -> list[tuple[str, float, str, int]]:
    """``(stage, visibility, model, seed)`` in the order they run: seed by seed, first the
    main table's linear, CF and MLAD and the sweep's CF and MLAD, then CB only and TB only
    (seed 0 has every model first), so that an interrupted run leaves whole seeds of the
    table and of the visibility curve rather than one stage done and the other not begun."""
    main, seeds = PROTOCOL["main_visibility"], PROTOCOL["seeds"]
    if dataset == "charades":
        return [("charades", main, m, s) for s in seeds for m in PROTOCOL["charades_models"]]
    branches = [m for m in PROTOCOL["models"] if m not in ("linear", "cf", "mlad")]
    runs = []
    for s in seeds:
        runs += [("main", main, m, s) for m in PROTOCOL["models"] if m not in branches or s == seeds[0]]
        runs += [("sweep", v, m, s) for v in PROTOCOL["sweep_visibilities"] if v != main
                 for m in PROTOCOL["sweep_models"]]
    runs += [("main", main, m, s) for s in seeds[1:] for m in branches]
    return runs


def run_key(visibility: float, model: str, seed: int) -> str:
    return f"v{visibility:g}/{model}/seed{seed}"


def _pairs(result, support) -> dict[str, float]:
    """Counted pairs ``"i,j" -> AP(i | j)`` (row i evaluated, column j conditioning)."""
    counted = np.argwhere(~np.isnan(result.pair_ap) & (support >= MIN_PAIR_SUPPORT))
    return {f"{i},{j}": round(float(result.pair_ap[i, j]), 5) for i, j in counted}


@torch.no_grad()
def cb_attention_rows(model, dataset, window: int, device: str, batch: int = 64) -> list[list[list[float]]]:
    """Per MLAD layer, ``(C, C)``: row i = class i's mean CB attention over the test steps
    where class i is present (non-overlapping windows of ``window`` steps, a video's last
    shorter window on its own)."""
    C = dataset.num_classes
    sums = None
    counts = np.zeros(C)
    model.eval()

    def add(x: np.ndarray, y: np.ndarray) -> None:  # x (N, t, D), y (N, t, C) bool
        nonlocal sums
        maps = model(torch.from_numpy(x).to(device), return_attention=True).attention
        if sums is None:
            sums = np.zeros((len(maps), C, C))
        for layer, m in enumerate(maps):
            cb = m["cb"].float().cpu().numpy()  # (N, t, C, C)
            sums[layer] += np.einsum("ntc,ntcj->cj", y, cb)  # sum of row c where c is present

    for k in range(len(dataset)):
        features, labels = dataset[k]
        full = len(features) // window * window
        xs = features[:full].reshape(-1, window, features.shape[1])
        ys = labels[:full].astype(bool).reshape(-1, window, C)
        for i in range(0, len(xs), batch):
            add(np.ascontiguousarray(xs[i:i + batch]), ys[i:i + batch])
        if full < len(features):
            add(np.ascontiguousarray(features[None, full:]), labels[None, full:].astype(bool))
        counts += labels.sum(0)
    rows = sums / np.maximum(counts, 1)[None, :, None]
    return [[[round(float(v), 5) for v in row] for row in layer] for layer in rows]


class _NoStandardTrainer(Trainer):
    """The library's trainer without table 2's standard metrics on the test split: on
    MultiTHUMOS's 138,000 test steps they take minutes on a CPU, and the protocol does not
    report them."""

    def _evaluate(self, model, split, standard):
        return super()._evaluate(model, split, False)


def one_run(dataset: str, root: Path, model: str, seed: int, budget: dict, device: str, work: Path,
            want_pairs: bool, want_attention: bool, smoke: bool) -> dict:
    """Train ``model`` on the folder ``root``; return its record."""
    overrides = dict(budget, model=model, seed=seed, device=device, run_dir=str(work / f"{model}-{seed}"))
    if smoke:
        overrides.update(epochs=1, windows_per_epoch=overrides["batch_size"])
    if dataset == "synthetic":
        config = make_config("synthetic", synthetic_size="tiny", synthetic_seed=seed, **overrides)
    else:
        config = make_config(dataset, root=str(root), **overrides)
    start = time.perf_counter()
    result = _NoStandardTrainer(config).fit()
    seconds = time.perf_counter() - start
    m = result.test_metrics
    record: dict[str, Any] = {
        "frame_map": 100 * m["frame_map"],
        "per_class_ap": [None if np.isnan(a) else round(100 * a, 4) for a in m["per_class_ap"]],
        "action_conditional": {str(t): {k: (100 * v if k != "pairs" else v) for k, v in r.items()}
                               for t, r in m["action_conditional"].items()},
        "best_epoch": result.best_epoch, "steps": result.steps, "seconds": seconds,
        "videos": m["videos"], "frames": m["frames"],
    }
    alphas = [float(torch.sigmoid(layer.alpha_logit.detach())) for layer in getattr(result.model, "layers", [])
              if getattr(layer, "alpha_logit", None) is not None]
    record["alpha"] = alphas or None
    if want_pairs or want_attention:
        test = load_splits(config, ("test",)).test
    if want_pairs:
        predictions = load_predictions(Path(config.run_dir) / "test_predictions.h5")
        labels = test.label_dict()
        ids = list(labels)
        sweep = action_conditional_sweep([predictions[v] for v in ids], [labels[v] for v in ids],
                                         tuple(PROTOCOL["taus"]), config.threshold, video_ids=ids)
        record["pair_ap"] = {str(t): _pairs(r, r.support) for t, r in sweep.items()}
        record["pair_support"] = {str(t): {f"{i},{j}": int(r.support[i, j])
                                           for i, j in np.argwhere(~np.isnan(r.pair_ap))} for t, r in sweep.items()}
    if want_attention:
        record["cb_attention_rows"] = cb_attention_rows(result.model.to(device), test, config.window, device)
    shutil.rmtree(config.run_dir, ignore_errors=True)  # predictions are large; the record keeps the numbers
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("multithumos", "charades"), default="multithumos")
    parser.add_argument("--annotations", help="annotation JSON or its folder (e.g. ../shared/data/multithumos)")
    parser.add_argument("--out", help="the JSON record (rewritten after every run)")
    parser.add_argument("--budget", choices=sorted(PROTOCOL["budgets"]), default="cpu")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--stages", nargs="+", default=None, help="main, sweep or charades (default: all of "
                        "the dataset's)")
    parser.add_argument("--seeds", type=int, nargs="+", help="only these of the protocol's seeds (to split "
                        "the protocol's runs across processes; each writes its own --out)")
    parser.add_argument("--smoke", action="store_true", help="1 step per run, CF and MLAD, record in the temp "
                        "folder, no number printed: checks the script (embedded data unless --annotations)")
    args = parser.parse_args(argv)

    budget = dict(PROTOCOL["budgets"][args.budget])
    if args.device != "cpu":
        budget.pop("num_threads")
    if args.smoke:
        out = Path(args.out or Path(tempfile.gettempdir()) / "mladlib_semireal_smoke.json")
        runs = [("smoke", 1.0, "cf", 0), ("smoke", 1.0, "mlad", 0)]
        out.unlink(missing_ok=True)
        budget["window"] = 64
    else:
        if args.annotations is None or args.out is None:
            parser.error("--annotations and --out are required (or --smoke)")
        out = Path(args.out)
        runs = planned_runs(args.dataset)
        if args.stages:
            runs = [r for r in runs if r[0] in args.stages]
        if args.seeds:
            runs = [r for r in runs if r[3] in args.seeds]

    record: dict[str, Any] = {}
    if out.is_file():
        record = json.loads(out.read_text())
        if record.get("protocol") != PROTOCOL or record.get("budget") != args.budget:
            raise SystemExit(f"{out} holds runs of another protocol or budget; move it aside first")
    record.setdefault("protocol", PROTOCOL)
    record.setdefault("budget", args.budget)
    record.setdefault("dataset", "synthetic" if args.smoke and args.annotations is None else args.dataset)
    record.setdefault("runs", {})
    record.setdefault("started", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    record.setdefault("dataset_info", {})
    record["machine"] = {"cpu": cpu_name(), "python": platform.python_version(), "torch": torch.__version__,
                         "device": args.device}
    max_videos = PROTOCOL["charades_max_videos"] if args.dataset == "charades" else None

    work = Path(tempfile.mkdtemp(prefix="mladlib_semireal_"))
    try:
        for stage, visibility, model, seed in runs:
            key = run_key(visibility, model, seed)
            if key in record["runs"]:
                continue
            if args.smoke and args.annotations is None:
                root = synth.dataset_root("tiny", seed)
                data_name = "synthetic"
            else:
                obs = observation(visibility, seed)
                root = semireal.dataset_root(args.dataset, args.annotations, obs, max_videos)
                data_name = args.dataset
                meta = json.loads((root / "semireal.json").read_text())
                record["dataset_info"][f"v{visibility:g}/seed{seed}"] = {
                    "videos": meta["videos"], "class_visibility": meta["class_visibility"]}
            main_level = visibility == PROTOCOL["main_visibility"]
            r = one_run(data_name, root, model, seed, budget, args.device, work,
                        want_pairs=main_level and model in PROTOCOL["pair_models"],
                        want_attention=main_level and model == "mlad" and seed == 0,
                        smoke=args.smoke)
            r["stage"] = stage
            record["runs"][key] = r
            record["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            with atomic_path(out) as tmp:
                tmp.write_text(json.dumps(record, indent=None, separators=(",", ":")))
            if args.smoke:  # 1 step: the numbers mean nothing, so none is shown
                print(f"{key:<22s} ran ({r['seconds']:.0f} s)", flush=True)
                continue
            print(f"{key:<22s} f-mAP {r['frame_map']:6.2f}  mAP_AC(0) {r['action_conditional']['0']['mAP_AC']:6.2f}"
                  f"  mAP_AC(20) {r['action_conditional']['20']['mAP_AC']:6.2f}  ({r['seconds']:.0f} s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
