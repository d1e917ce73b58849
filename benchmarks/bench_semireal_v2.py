"""Protocol v2 of the semi-real experiment: dependency against persistence.

The protocol (fixed before any v2 result; ``benchmarks/SEMIREAL_PROTOCOL_V2.md``) is the
constant :data:`PROTOCOL` below. For seed ``s`` the data of a condition (``real``
labels, or the ``control``: each class's track circularly shifted on its own, per
video) are built with ``ObservationModel(visibility=v, seed=s)`` (observation model
``m1``) or with :class:`mladlib.semireal.LookAlikes` too (``m2``); every model trains
with ``seed=s`` under one stopping rule (validation f-mAP every ``check_every_steps``
steps, stop after ``patience_checks`` checks without a new best, at most ``cap_steps``
steps) and the best check is tested. The CF run also yields ``cf-smooth``: CF's scores
averaged over a window of steps chosen on the validation videos
(:mod:`mladlib.smoothing`).

Stages, most informative first (:func:`planned_runs`): ``main`` (m1, v = 1, real and
control, every model), ``lookalike`` (m2, v = 1, the same), ``sweep`` (m1, the other
visibilities, CF, TB and MLAD, real and control), ``charades`` (``--dataset charades``).

The JSON record is rewritten atomically after every finished run; a rerun skips the runs
in it, so an interrupted process continues where it stopped. A run in progress trains in
``<out stem>.runs/<run key>/``, whose ``last.pt`` is written at every check (and on
SIGINT/SIGTERM): a run cut short, even by a kill, continues from there when the same
command is given again, bit for bit on CPU (its ``resumed_at_step`` says so). Each run
records the library commit (``git rev-parse HEAD`` when the process started) and whether
the tree was clean (the record folder ``benchmarks/results`` aside). Processes split by
``--stages``/``--seeds`` write separate files; ``--merge`` joins them. When more than
1 in 5 of a model's runs in a stage end at the cap, the protocol doubles the cap for
those runs only: ``--redo-capped --cap-steps 6000`` (with ``--stages``/``--models`` to
pick them) reruns the selected runs that ended at the cap, each keeping the replaced
run's outcome in ``first_run_at_cap``. Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_semireal_v2.py --stages main \\
        --seeds 0 2 4 --annotations ../shared/data/multithumos \\
        --out benchmarks/results/semireal_v2_main_a.json
    python benchmarks/bench_semireal_v2.py --merge \\
        benchmarks/results/semireal_v2_multithumos.json \\
        benchmarks/results/semireal_v2_main_a.json \\
        benchmarks/results/semireal_v2_main_b.json
    python benchmarks/bench_semireal_v2.py --status \\
        benchmarks/results/semireal_v2_multithumos.json
    python benchmarks/bench_semireal_v2.py --smoke   # made-up labels: tests the script
"""

from __future__ import annotations

import argparse
import fcntl
import json
import platform
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_semireal import _NoStandardTrainer, _pairs, cb_attention_rows  # noqa: E402
from records import library_state  # noqa: E402

from mladlib import semireal, smoothing  # noqa: E402
from mladlib.data import load_predictions  # noqa: E402
# the record's key formats, defined where the record is read
from mladlib.semireal_analysis import data_key, join_records, run_key  # noqa: E402
from mladlib.train import make_config  # noqa: E402
from mladlib.train.evaluate import metrics_from_predictions  # noqa: E402
from mladlib.utils import atomic_path, cpu_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROTOCOL: dict[str, Any] = {
    "version": 2,
    "observation": {"spread": 3.0, "rho": 0.5, "feature_dim": 64},
    "observation_models": {"m1": None, "m2": {"group_size": 4, "share": 0.8}},
    "conditions": ["real", "control"],
    "main_visibility": 1.0,
    "sweep_visibilities": [0.5, 2.0, 4.0],
    "models": ["linear", "cf", "cb", "tb", "mlad"],
    "sweep_models": ["cf", "tb", "mlad"],
    "charades_models": ["cf", "tb", "mlad"],
    "charades_max_videos": 600,
    "pair_models": ["cf", "mlad"],
    # pair APs and CB attention rows (at the main visibility): MultiTHUMOS only (on
    # Charades' 157 classes they would take about 1 MB per run)
    "detail_datasets": ["multithumos"],
    "smoothing_windows": list(smoothing.WINDOWS),
    "seeds": [0, 1, 2, 3, 4],
    "taus": [0, 20],
    "budgets": {
        # measured on the book's 2-core machine (SEMIREAL_PROTOCOL_V2.md, "Budget")
        "cpu": dict(
            hidden_dim=32,
            num_layers=2,
            num_heads=1,
            dropout=0.1,
            window=64,
            variable_length=True,
            length_step=16,
            batch_size=8,
            lr=1e-3,
            weight_decay=0.0,
            eval_stride=64,
            eval_batch_size=64,
            val_fraction=0.1,
            num_threads=1,
            in_memory=True,
            check_every_steps=50,
            patience_checks=6,
            cap_steps=3000,
        ),
        # the paper's model size and T: for a GPU, recorded under the GPU's name
        "gpu": dict(
            hidden_dim=128,
            num_layers=5,
            num_heads=1,
            dropout=0.1,
            window=128,
            variable_length=True,
            length_step=16,
            batch_size=32,
            lr=3e-4,
            weight_decay=1e-6,
            eval_stride=64,
            eval_batch_size=64,
            val_fraction=0.1,
            num_threads=4,
            in_memory=True,
            check_every_steps=250,
            patience_checks=8,
            cap_steps=20000,
        ),
    },
}
STOPPING = ("check_every_steps", "patience_checks", "cap_steps")
#: --smoke: the protocol's code paths on made-up labels in seconds (meaningless numbers)
SMOKE_BUDGET = dict(
    PROTOCOL["budgets"]["cpu"],
    hidden_dim=8,
    num_layers=1,
    window=32,
    batch_size=4,
    check_every_steps=2,
    patience_checks=1,
    cap_steps=6,
    eval_stride=32,
)


def planned_runs(dataset: str, seeds: list[int] | None = None) -> list[dict[str, Any]]:
    """Every run of ``dataset`` in the order it runs: stage by stage (``main``,
    ``lookalike``, ``sweep``; ``charades`` alone), seed by seed inside a stage, and
    inside a seed the models that the differences need first (CF, MLAD, TB, then CB,
    linear), each on real labels then on the control, so a partial record holds whole
    seeds."""
    seeds = PROTOCOL["seeds"] if seeds is None else seeds
    main = PROTOCOL["main_visibility"]
    first = ["cf", "mlad", "tb", "cb", "linear"]

    def order(models: list[str]) -> list[str]:
        return [m for m in first if m in models]

    if dataset == "charades":
        stages = [("charades", "m1", [main], order(PROTOCOL["charades_models"]))]
    else:
        stages = [
            ("main", "m1", [main], order(PROTOCOL["models"])),
            ("lookalike", "m2", [main], order(PROTOCOL["models"])),
            (
                "sweep",
                "m1",
                PROTOCOL["sweep_visibilities"],
                order(PROTOCOL["sweep_models"]),
            ),
        ]
    runs = []
    for stage, obs_model, levels, models in stages:
        for s in seeds:
            for v in levels:
                for m in models:
                    for condition in PROTOCOL["conditions"]:
                        runs.append(
                            dict(
                                stage=stage,
                                obs_model=obs_model,
                                condition=condition,
                                visibility=v,
                                model=m,
                                seed=s,
                                key=run_key(obs_model, condition, v, m, s),
                            )
                        )
    return runs


def stopping_overrides(budget: dict[str, Any]) -> dict[str, Any]:
    """The stopping rule as trainer settings: an epoch of ``check_every_steps`` batches,
    validation after every epoch, ``patience`` checks, ``cap_steps`` as the epoch cap.
    """
    every, patience, cap = (budget[k] for k in STOPPING)
    if cap % every:
        raise ValueError(
            f"cap_steps {cap} is not a multiple of check_every_steps {every}"
        )
    return dict(
        windows_per_epoch=every * budget["batch_size"],
        eval_every=1,
        patience=patience,
        epochs=cap // every,
    )


class RunInterrupted(Exception):
    """A run stopped by a signal before it finished (the record is left as it was)."""


def train_config(
    dataset: str,
    root: Path,
    model: str,
    seed: int,
    budget: dict[str, Any],
    device: str,
    run_dir: Path,
    options: dict[str, Any] | None = None,
):
    """The :class:`~mladlib.train.TrainConfig` of one run (what every model of the
    protocol gets: the budget, the stopping rule, and the variant's own inputs);
    ``options``: settings that differ from the protocol's (addendum A's variants)."""
    settings = {k: v for k, v in budget.items() if k not in STOPPING}
    settings.update(options or {})
    if device != "cpu":
        settings.pop("num_threads", None)
    return make_config(
        dataset,
        root=str(root),
        model=model,
        seed=seed,
        device=device,
        run_dir=str(run_dir),
        **settings,
        **stopping_overrides(budget),
    )


def rounded(values, digits: int = 4):
    return [
        None if v is None or not np.isfinite(v) else round(float(v), digits)
        for v in values
    ]


def test_record(metrics: dict) -> dict[str, Any]:
    """f-mAP, per-class AP and the action-conditional metrics, x100."""
    return {
        "frame_map": 100 * metrics["frame_map"],
        "per_class_ap": rounded(
            100 * np.asarray(metrics["per_class_ap"], dtype=np.float64)
        ),
        "action_conditional": {
            str(t): {k: (100 * v if k != "pairs" else v) for k, v in r.items()}
            for t, r in metrics["action_conditional"].items()
        },
    }


def pair_aps(
    predictions: dict, labels: dict, threshold: float
) -> dict[str, dict[str, float]]:
    """Every counted pair's AP(i | j) at the protocol's taus (support: dataset_info)."""
    from mladlib.metrics import action_conditional_sweep

    ids = list(labels)
    sweep = action_conditional_sweep(
        [predictions[v] for v in ids],
        [labels[v] for v in ids],
        tuple(PROTOCOL["taus"]),
        threshold,
        video_ids=ids,
    )
    return {str(t): _pairs(r, r.support) for t, r in sweep.items()}


def pair_support(labels: dict, threshold: float) -> dict[str, dict[str, int]]:
    """Conditioning steps of each counted pair (from labels: one for every model)."""
    from mladlib.metrics import action_conditional_sweep

    ids = list(labels)
    sweep = action_conditional_sweep(
        [labels[v].astype(np.float32) for v in ids],
        [labels[v] for v in ids],
        tuple(PROTOCOL["taus"]),
        threshold,
        video_ids=ids,
    )
    return {
        str(t): {
            f"{i},{j}": int(r.support[i, j])
            for i, j in np.argwhere(~np.isnan(r.pair_ap))
        }
        for t, r in sweep.items()
    }


def detailed(dataset: str, spec: dict[str, Any]) -> bool:
    """Whether a run keeps the details (pair APs, CB attention rows, co-occurrence):
    the main visibility of the detail datasets."""
    return (spec["visibility"] == PROTOCOL["main_visibility"]
            and dataset in PROTOCOL["detail_datasets"])


def one_run(
    dataset: str,
    root: Path,
    spec: dict[str, Any],
    budget: dict[str, Any],
    device: str,
    runs_dir: Path,
) -> dict[str, dict[str, Any]]:
    """Train one model on ``root``; return ``{key: record}`` (two records for CF: its
    own and ``cf-smooth``). The run trains in its own folder under ``runs_dir``; where
    an interrupted process left the run's ``last.pt`` there, it continues from that
    step (bit for bit on CPU), and ``seconds`` counts every process's wall time."""
    main_level = detailed(dataset, spec)
    run_dir = runs_dir / spec["key"].replace("/", "-")
    config = train_config(
        dataset, root, spec["model"], spec["seed"], budget, device, run_dir
    )
    last = run_dir / "last.pt"
    resuming = last.exists()
    if not resuming:  # stopped before its first check, or never started
        shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    trainer = _NoStandardTrainer(config, resume=last if resuming else None)
    resumed_at = trainer.state.step if resuming else None
    if resumed_at is not None:
        print(f"{spec['key']}: resuming at step {resumed_at} ({last})", flush=True)
    result = trainer.fit()
    seconds = time.perf_counter() - start + trainer.state.elapsed_before
    if result.stopped is not None:  # a signal: nothing of this run goes in the record
        raise RunInterrupted(f"{spec['key']} stopped by {result.stopped}; the record "
                             "keeps every finished run, and this run continues where "
                             "it stopped: give the same command to go on")
    curve = [{"step": e["step"], "val_frame_map": 100 * e["val_frame_map"],
              "loss": e["loss"]}
             for e in result.history if e["val_frame_map"] is not None]
    best_step = next(e["step"] for e in result.history
                     if e["epoch"] == result.best_epoch)
    record: dict[str, Any] = {
        **test_record(result.test_metrics),
        "ended_by": result.ended_by,
        "steps": result.steps,
        "best_step": best_step,
        "best_val_frame_map": 100 * result.best_val_frame_map,
        "validation_curve": curve,
        "seconds": seconds,
        "videos": result.test_metrics["videos"],
        "frames": result.test_metrics["frames"],
    }
    if resumed_at is not None:
        record["resumed_at_step"] = resumed_at
    alphas = [float(torch.sigmoid(layer.alpha_logit.detach()))
              for layer in getattr(result.model, "layers", [])
              if getattr(layer, "alpha_logit", None) is not None]
    record["alpha"] = alphas or None
    test_labels = trainer.splits.test.label_dict()
    predictions = None
    if main_level and spec["model"] in PROTOCOL["pair_models"]:
        predictions = load_predictions(Path(config.run_dir) / "test_predictions.h5")
        record["pair_ap"] = pair_aps(predictions, test_labels, config.threshold)
    if main_level and spec["model"] == "mlad":
        record["cb_attention_rows"] = cb_attention_rows(
            result.model.to(trainer.device), trainer.splits.test, config.window,
            str(trainer.device))
    records = {spec["key"]: record}
    if spec["model"] == "cf":  # the persistence baseline: CF's scores, smoothed
        start = time.perf_counter()
        if predictions is None:
            predictions = load_predictions(Path(config.run_dir) / "test_predictions.h5")
        val_predictions = trainer._evaluate(result.model, "val", False).predictions
        window, by_window = smoothing.choose_window(  # the window chosen on validation
            val_predictions, trainer.splits.val.label_dict(),
            PROTOCOL["smoothing_windows"])
        smoothed = smoothing.smooth_all(predictions, window)
        metrics = metrics_from_predictions(
            smoothed, test_labels, taus=config.taus, threshold=config.threshold,
            standard=False,
        ).to_dict()
        smooth = {
            **test_record(metrics),
            "window": window,
            "val_frame_map_by_window": {str(w): 100 * v for w, v in by_window.items()},
            "derived_from": spec["key"],
            "seconds": time.perf_counter() - start,
        }
        if main_level:
            smooth["pair_ap"] = pair_aps(smoothed, test_labels, config.threshold)
        smooth_key = run_key(spec["obs_model"], spec["condition"], spec["visibility"],
                             "cf-smooth", spec["seed"])
        records[smooth_key] = smooth
    # predictions are large; the record keeps the numbers
    shutil.rmtree(config.run_dir, ignore_errors=True)
    return records


def observation(spec: dict[str, Any], budget_obs: dict[str, Any]) -> tuple:
    obs = semireal.ObservationModel(visibility=spec["visibility"], seed=spec["seed"],
                                    **budget_obs)
    lookalikes = PROTOCOL["observation_models"][spec["obs_model"]]
    return obs, None if lookalikes is None else semireal.LookAlikes(**lookalikes)


def data_info(dataset: str, root: Path, main_level: bool, threshold: float
              ) -> dict[str, Any]:
    """What the record keeps of one built dataset: its meta, the training labels' step
    co-occurrence (and how far it is above independence), the test pairs' support."""
    from mladlib.data import VideoDataset

    meta = json.loads((root / "semireal.json").read_text())
    kept = ("videos", "class_visibility", "condition", "lookalike_groups",
            "control_tracks")
    info = {k: meta[k] for k in kept}
    train = VideoDataset.from_folder(root, "train", semireal.spec_for(dataset))
    labels = list(train.label_dict().values())
    P, counts = semireal.step_cooccurrence(labels)
    steps = sum(len(y) for y in labels)
    marginal = counts / steps
    off = ~np.eye(len(counts), dtype=bool)
    observed = float(np.sum((P * counts[:, None])[off & np.isfinite(P)]))
    expected = float(np.sum(np.outer(counts, marginal)[off]))
    if main_level:  # read beside the CB attention rows
        info["train_cooccurrence"] = [rounded(row) for row in P]
    info["train_cooccurrence_ratio"] = observed / expected if expected else None
    info["train_cooccurrence_departure"], info["departure_pairs"] = (
        semireal.cooccurrence_departure(labels)
    )
    if main_level:
        test = VideoDataset.from_folder(root, "test", semireal.spec_for(dataset))
        info["pair_support"] = pair_support(test.label_dict(), threshold)
    return info


def load_record(out: Path, budget_name: str, dataset: str) -> dict[str, Any]:
    if out.is_file():
        record = json.loads(out.read_text())
        if (record.get("protocol") != PROTOCOL or record.get("budget") != budget_name
                or record.get("dataset") != dataset):
            raise SystemExit(f"{out} holds runs of another protocol, budget or "
                             "dataset; move it aside first")
        return record
    return {
        "protocol": PROTOCOL,
        "budget": budget_name,
        "dataset": dataset,
        "runs": {},
        "dataset_info": {},
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def first_run_at_cap(replaced: dict[str, Any], first_cap: int) -> dict[str, Any]:
    """What a run rerun under the doubled cap keeps of the run it replaces."""
    kept = ("frame_map", "steps", "best_val_frame_map", "library", "started")
    return {**{k: replaced.get(k) for k in kept},
            "cap_steps": replaced.get("cap_steps", first_cap)}


def write_record(out: Path, record: dict[str, Any]) -> None:
    record["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(record, separators=(",", ":")))


def merge(out: Path, inputs: list[Path]) -> dict[str, Any]:
    """Join records of one protocol, budget and dataset into ``out`` (which may be one
    of them). A run in two inputs must hold the same numbers in both."""
    missing = [str(p) for p in inputs if not p.is_file()]
    if missing:
        raise SystemExit(f"no such record: {', '.join(missing)}")
    records = [json.loads(p.read_text()) for p in inputs]
    try:
        merged = join_records(records, [str(p) for p in inputs])
    except ValueError as err:
        raise SystemExit(str(err)) from None
    write_record(out, merged)
    return merged


#: --compare's tolerances (f-mAP points): a library change "moved" a run beyond these
COMPARE_TEST, COMPARE_VAL = 0.05, 0.1


def compare(
    record: dict[str, Any], reference: dict[str, Any], keys: list[str]
) -> tuple[bool, str]:
    """``(all within tolerance, report)``: each of ``keys`` (runs of ``record``) against
    the same run of ``reference``: test f-mAP, every validation check, steps trained."""
    lines, ok = [], True
    for key in keys:
        new, old = record["runs"].get(key), reference["runs"].get(key)
        if new is None or old is None:
            lines.append(f"{key:<32s} not in both records")
            ok = False
            continue
        test = abs(new["frame_map"] - old["frame_map"])
        curves = [c.get("validation_curve", []) for c in (new, old)]
        val = max(
            (abs(a["val_frame_map"] - b["val_frame_map"]) for a, b in zip(*curves)),
            default=0.0,
        )
        same_steps = new.get("steps") == old.get("steps") and len(curves[0]) == len(
            curves[1]
        )
        good = test <= COMPARE_TEST and val <= COMPARE_VAL and same_steps
        ok &= good
        commits = f"{old['library']['commit'][:10]} -> {new['library']['commit'][:10]}"
        lines.append(
            f"{key:<32s} test f-mAP {test:.4f} apart, validation up to {val:.4f}, "
            f"steps {new.get('steps')} vs {old.get('steps')} ({commits}): "
            f"{'same' if good else 'MOVED'}"
        )
    return ok, "\n".join(lines)


def status(record: dict[str, Any]) -> str:
    """Runs done and left, per stage and seed, and how the done ones stopped."""
    lines = []
    for stage in ("main", "lookalike", "sweep", "charades"):
        runs = [r for r in planned_runs(record["dataset"]) if r["stage"] == stage]
        if not runs:
            continue
        done = [r for r in runs if r["key"] in record["runs"]]
        ends = [record["runs"][r["key"]]["ended_by"] for r in done]
        left = sorted({r["seed"] for r in runs if r["key"] not in record["runs"]})
        plateau, cap = ends.count("plateau"), ends.count("cap")
        lines.append(
            f"{stage:<10s} {len(done):3d}/{len(runs)} runs done ({plateau} plateau, "
            f"{cap} cap); seeds with runs left: {left or 'none'}"
        )
    return "\n".join(lines)


def smoke_source(folder: Path, seed: int = 0) -> Path:
    """A MultiTHUMOS-style annotation folder of made-up labels (12 training, 4 test
    videos of 20-40 s; classes 1-6 in sometimes overlapping segments)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    videos, lists = {}, {"training": [], "testing": []}
    for k in range(16):
        subset = "training" if k < 12 else "testing"
        duration = float(rng.uniform(20, 40))
        actions = []
        for _ in range(8):
            start = float(rng.uniform(0, duration - 2))
            actions.append(
                [int(rng.integers(1, 7)), start, start + float(rng.uniform(0.5, 4))]
            )
        videos[f"v{k:02d}"] = {
            "subset": subset,
            "duration": duration,
            "actions": actions,
        }
        lists[subset].append(f"v{k:02d}")
    (folder / "multithumos.json").write_text(json.dumps(videos))
    (folder / "train_list.txt").write_text("".join(f"{v}\n" for v in lists["training"]))
    (folder / "test_list.txt").write_text("".join(f"{v}\n" for v in lists["testing"]))
    return folder


def machine(device: str) -> dict[str, Any]:
    gpu = (
        torch.cuda.get_device_name(0)
        if device.startswith("cuda") and torch.cuda.is_available()
        else None
    )
    return {
        "cpu": cpu_name(),
        "gpu": gpu,
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", choices=("multithumos", "charades"), default="multithumos"
    )
    parser.add_argument(
        "--annotations",
        help="annotation JSON or its folder (e.g. ../shared/data/multithumos)",
    )
    parser.add_argument(
        "--out", type=Path, help="the JSON record (rewritten after every run)"
    )
    parser.add_argument("--budget", choices=sorted(PROTOCOL["budgets"]), default="cpu")
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda (default: %(default)s)"
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=("main", "lookalike", "sweep", "charades"),
        help="only these stages (default: all of the dataset's)",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="only these of the protocol's seeds"
    )
    parser.add_argument(
        "--models", nargs="+", help="only these models (e.g. to rerun one recorded run)"
    )
    parser.add_argument("--conditions", nargs="+", choices=PROTOCOL["conditions"])
    parser.add_argument("--visibilities", type=float, nargs="+")
    parser.add_argument(
        "--redo-capped",
        action="store_true",
        help="rerun the selected runs that ended at the cap, with --cap-steps (the "
        "protocol's rule when over 1 in 5 of a model's runs in a stage hit it); each "
        "replaces its run and keeps the first outcome; no other run is trained",
    )
    parser.add_argument(
        "--cap-steps", type=int, help="the doubled cap for --redo-capped"
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar=("OUT", "IN"),
        help="join records: OUT IN [IN ...]; nothing is trained",
    )
    parser.add_argument(
        "--status", type=Path, help="print the runs done and left in this record"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        help="after training, compare the runs trained now with "
        "the same runs of this record (a library change against the record); exit 1 if "
        "one moved",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="made-up labels, a few steps per run, the "
        "record in the temp folder unless --out: checks the script, no number printed",
    )
    args = parser.parse_args(argv)
    if args.redo_capped != (args.cap_steps is not None):
        parser.error("--redo-capped and --cap-steps go together")

    if args.merge:
        if len(args.merge) < 2:
            parser.error("--merge needs OUT and at least one IN")
        print(status(merge(args.merge[0], args.merge[1:])))
        return 0
    if args.status:
        print(status(json.loads(args.status.read_text())))
        return 0
    budget = dict(SMOKE_BUDGET if args.smoke else PROTOCOL["budgets"][args.budget])
    first_cap = budget["cap_steps"]  # the cap the protocol's runs trained under
    if args.redo_capped:
        every = budget["check_every_steps"]
        if args.cap_steps <= first_cap or args.cap_steps % every:
            parser.error(f"--cap-steps {args.cap_steps}: a multiple of the checks' "
                         f"{every} steps above the cap of {first_cap}, please")
        budget["cap_steps"] = args.cap_steps
    if args.smoke:
        out = args.out or Path(tempfile.gettempdir()) / "mladlib_semireal_v2_smoke.json"
        runs = [r for r in planned_runs("multithumos", [0]) if r["visibility"] == 1.0
                and (r["stage"] == "main" or r["model"] == "mlad")]
        max_videos = None
    else:
        if args.annotations is None or args.out is None:
            parser.error("--annotations and --out are required "
                         "(or --smoke, --merge, --status)")
        out = args.out
        runs = planned_runs(args.dataset)
        charades = args.dataset == "charades"
        max_videos = PROTOCOL["charades_max_videos"] if charades else None
    for name, field in (("stages", "stage"), ("seeds", "seed"), ("models", "model"),
                        ("conditions", "condition"), ("visibilities", "visibility")):
        if getattr(args, name):
            runs = [r for r in runs if r[field] in getattr(args, name)]
    out.parent.mkdir(parents=True, exist_ok=True)
    # runs in progress, kept across processes so that an interrupted run continues; the
    # smoke test's made-up labels and data live there too (a resumed run needs its data
    # folder where it was)
    runs_dir = out.with_name(out.stem + ".runs")
    smoke_dir = runs_dir / "smoke"
    if args.annotations:
        annotations = Path(args.annotations)
    else:
        annotations = smoke_source(smoke_dir / "labels")
    try:
        with open(out.with_name(out.name + ".lock"), "w") as lock:
            try:  # one process per record file; the lock goes with the process
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SystemExit(
                    f"another process is writing {out}; give each process its own --out"
                ) from None
            record = load_record(out, "smoke" if args.smoke else args.budget,
                                 args.dataset)
            state, host = library_state(), machine(args.device)
            if not state.get("clean") and not args.smoke:
                print("warning: the tree has changes; each run records them: "
                      f"{state.get('changes')}", file=sys.stderr)
            for spec in runs:
                first = record["runs"].get(spec["key"])
                redo = (args.redo_capped and first is not None
                        and first["ended_by"] == "cap"
                        and first.get("cap_steps", first_cap) < budget["cap_steps"])
                if (first is not None or args.redo_capped) and not redo:
                    continue
                obs, lookalikes = observation(spec, PROTOCOL["observation"])
                root = semireal.condition_root(
                    args.dataset, annotations, obs, spec["condition"], lookalikes,
                    max_videos, cache=smoke_dir / "data" if args.smoke else None)
                dkey = data_key(spec["obs_model"], spec["condition"],
                                spec["visibility"], spec["seed"])
                if dkey not in record["dataset_info"]:
                    record["dataset_info"][dkey] = data_info(
                        args.dataset, root, detailed(args.dataset, spec), 0.5)
                started = datetime.now(timezone.utc).isoformat(timespec="seconds")
                trained = one_run(args.dataset, root, spec, budget, args.device,
                                  runs_dir)
                where = ("stage", "obs_model", "condition", "visibility", "seed")
                looks = None if lookalikes is None else asdict(lookalikes)
                for key, r in trained.items():
                    r.update({k: spec[k] for k in where}, model=key.split("/")[3],
                             library=state, machine=host, started=started,
                             observation={**asdict(obs), "lookalikes": looks})
                    if "ended_by" in r:
                        r["cap_steps"] = budget["cap_steps"]
                    if redo:  # the run it replaces, as the rule keeps it
                        r["first_run_at_cap"] = first_run_at_cap(
                            record["runs"][key], first_cap)
                    record["runs"][key] = r
                    if args.smoke:  # a few steps: the numbers mean nothing, none shown
                        print(f"{key:<32s} ran ({r['seconds']:.0f} s)", flush=True)
                    else:
                        how = r.get("ended_by") or "derived"
                        print(f"{key:<32s} f-mAP {r['frame_map']:6.2f}  ({how}, "
                              f"{r.get('steps', 0)} steps, {r['seconds']:.0f} s)",
                              flush=True)
                write_record(out, record)
    except RunInterrupted as stop:
        print(stop, file=sys.stderr)
        return 130
    shutil.rmtree(smoke_dir, ignore_errors=True)
    if runs_dir.is_dir() and not any(runs_dir.iterdir()):
        runs_dir.rmdir()  # every run it held finished
    print(status(record))
    print(out)
    if args.compare:
        # the runs this command trains, and the smoothed runs derived from them
        keys = {r["key"] for r in runs}
        keys |= {r["key"].replace(f"/{r['model']}/", f"/{r['model']}-smooth/")
                 for r in runs}
        trained = [k for k in record["runs"] if k in keys]
        ok, report = compare(record, json.loads(args.compare.read_text()), trained)
        print(report)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
