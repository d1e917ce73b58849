"""Benchmark: the action-conditional metrics (eq. 9-12) against the loop reference, same run.

At MultiTHUMOS-test scale (about 140K frames x 65 classes) and Charades-test scale (about
160-170K frames x 157 classes), times all four action-conditional metrics (P, R, F1, mAP
with their per-pair matrices) at tau in {0, 20}:

* fast: ``mladlib.metrics.action_conditional_sweep(scores, labels, taus=(0, 20))`` (one
  ranking per class shared by both taus), and the two single-tau calls;
* reference: ``tests/reference_metrics.reference_action_conditional`` at each tau (a
  loop over class pairs, one scikit-learn ``average_precision_score`` per pair);

checks exactness (max abs difference over every aggregate and per-pair value; counts
equal) and reports peak memory: a fresh process builds the inputs, runs the sweep once
and reports the peak resident set during the sweep (``VmHWM`` after resetting it through
``/proc/self/clear_refs``; elsewhere ``ru_maxrss``), interpreter, libraries and inputs
included, with the resident set just before the sweep beside it, and on CUDA
``torch.cuda.max_memory_allocated``. Also times f-mAP against per-class scikit-learn.

Labels: the real MultiTHUMOS / Charades test annotations when ``../shared/data`` is
present (frame ``f`` of ``n = round(3 * duration)`` at time ``f * duration / n``, labelled
when ``start <= time <= end``), else synthetic videos with matching statistics
(contiguous action segments, label density 1.56 and 3.7 per frame). Scores are synthetic
float32 probabilities, ``sigmoid(2 y - 2 + 1.5 * noise)`` with standard normal noise, seeded.

Usage::

    python benchmarks/bench_metrics.py                 # CPU, both datasets
    python benchmarks/bench_metrics.py --devices cpu cuda   # also on the GPU (reference on the CPU)
    python benchmarks/bench_metrics.py --out metrics.json   # also write a JSON record
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sklearn  # noqa: E402

from mladlib.metrics import (  # noqa: E402
    action_conditional, action_conditional_sweep, condition_mask, frames_from_videos, per_class_ap,
)
from mladlib.utils import cpu_name, seed_everything  # noqa: E402
from reference_metrics import (  # noqa: E402
    reference_action_conditional, reference_per_class_ap, frame_labels_of_test_split,
)

SHARED = Path(os.environ.get("MLADLIB_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATASETS = {  # name: (json, classes, first class id, synthetic: videos, mean frames, labels per frame)
    "multithumos": ("multithumos/multithumos.json", 65, 1, (213, 650, 1.56)),
    "charades": ("charades/charades.json", 157, 0, (1863, 86, 3.7)),
}
TAUS = (0, 20)


def real_labels(name: str) -> list[np.ndarray] | None:
    path, C, first_id, _ = DATASETS[name]
    if not (SHARED / path).is_file():
        return None
    return frame_labels_of_test_split(SHARED / path, C, first_id)[1]


def synthetic_labels(name: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Videos of contiguous action segments; frequent classes (Zipf), co-occurring partners
    and followers (so tau windows see real structure); about the real label density."""
    _, C, _, (num_videos, mean_frames, density) = DATASETS[name]
    frequency = 1.0 / (np.arange(C) + 4.0)
    frequency /= frequency.sum()
    partner, follower = rng.permutation(C), rng.permutation(C)
    labels = []
    for _ in range(num_videos):
        T = int(np.clip(rng.lognormal(np.log(mean_frames) - 0.18, 0.6), 8, 20 * mean_frames))  # mean ~ mean_frames
        y = np.zeros((T, C), dtype=np.uint8)
        mean_segment = max(3.0, 0.15 * T)
        for _ in range(rng.poisson(density * T / mean_segment / 1.27) + 1):
            c = rng.choice(C, p=frequency)
            start, length = rng.integers(0, T), 1 + int(rng.exponential(mean_segment))
            y[start:start + length, c] = 1
            if rng.random() < 0.3:  # co-occurrence
                y[start:start + length // 2 + 1, partner[c]] = 1
            if rng.random() < 0.3:  # temporal dependency: the follower starts a few steps later
                gap = int(rng.integers(1, 15))
                y[start + length + gap:start + 2 * length + gap, follower[c]] = 1
        labels.append(y)
    return labels


def noisy_scores(labels: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    return [
        (1 / (1 + np.exp(-(2.0 * y - 2.0 + 1.5 * rng.standard_normal(y.shape))))).astype(np.float32)
        for y in labels
    ]


def machine() -> str:
    cpu = cpu_name()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    load = ", load average %.2f %.2f %.2f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    return (f"{cpu}, {cores} cores{gpu}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, Python {platform.python_version()}{load}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1]) / 1024


def current_rss_mb() -> float:
    return status_mb("VmRSS") if Path("/proc/self/status").exists() else peak_rss_mb()


def reset_peak_rss() -> bool:
    """Reset the peak resident set (VmHWM) to the current one (Linux >= 4.0); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def clock() -> np.ndarray:
    """(wall, CPU) seconds: the process's CPU time is less disturbed by other jobs on a shared machine."""
    return np.array([time.perf_counter(), time.process_time()])


def timed(fn, device: str, repeats: int):
    """Best of ``repeats`` (wall, CPU) seconds, each minimised separately, after one warm-up
    call; and the last result."""
    result = fn()
    best = np.array([np.inf, np.inf])
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = clock()
        result = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = np.minimum(best, clock() - start)
    return best, result


def max_difference(fast, ref: dict) -> tuple[float, bool]:
    """Largest |fast - reference| over aggregates and per-pair values; whether counts and NaNs agree."""
    diff, same = 0.0, True
    for key, attr in (("precision", "precision"), ("recall", "recall"), ("f1", "f1"), ("ap", "map")):
        a, b = getattr(fast, attr), ref[key]
        same &= np.isnan(a) == np.isnan(b)
        if not np.isnan(a):
            diff = max(diff, abs(a - b))
        pa, pb = getattr(fast, f"pair_{key}"), ref[f"pair_{key}"]
        same &= bool((np.isnan(pa) == np.isnan(pb)).all())
        if (~np.isnan(pb)).any():
            diff = max(diff, float(np.nanmax(np.abs(pa - pb))))
    for key in ("support", "n_predict", "n_correct"):
        same &= bool((getattr(fast, key) == ref[key]).all())
    return diff, same and fast.n_pairs == ref["n_pairs"]


def time_fast(scores, labels, device: str, repeats: int) -> dict:
    """The fast path on ``device``: the sweep, the two single-tau calls, and per-class AP."""
    on_device_scores = [torch.from_numpy(s).to(device) for s in scores]
    on_device_labels = [torch.from_numpy(y).to(device) for y in labels]
    sweep_s, sweep = timed(lambda: action_conditional_sweep(on_device_scores, on_device_labels, TAUS), device, repeats)
    single_s = sum(timed(lambda t=t: action_conditional(on_device_scores, on_device_labels, t), device, repeats)[0]
                   for t in TAUS)  # (wall, CPU)
    fmap_s, ap = timed(lambda: per_class_ap(on_device_scores, on_device_labels), device, repeats)
    return {"sweep_s": sweep_s, "sweep": sweep, "single_s": single_s, "fmap_s": fmap_s, "ap": ap}


def inputs(name: str, source: str) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    rng = np.random.default_rng(0)
    labels = real_labels(name) if source != "synthetic" else None
    if labels is None:
        if source == "real":
            raise SystemExit(f"--labels real: {SHARED / DATASETS[name][0]} not found")
        labels, used = synthetic_labels(name, rng), "synthetic"
    else:
        used = "real test annotations"
    return noisy_scores(labels, rng), labels, used


def probe_memory(name: str, source: str, device: str) -> str:
    """Peak memory of the sweep in a fresh process: RSS after building the inputs, then after one sweep."""
    code = (f"import sys; sys.argv = ['x', '--probe', {name!r}, {device!r}, '--labels', {source!r}]; "
            f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_metrics; bench_metrics.main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    probe = json.loads(out.strip().splitlines()[-1])
    text = f"{probe['peak_mb']:.0f} MB RSS ({probe['inputs_mb']:.0f} MB before)"  # both include the inputs
    return text + (f", {probe['gpu_mb']:.0f} MB GPU" if "gpu_mb" in probe else "")


def run(name: str, source: str, devices: list[str], repeats: int) -> list[dict]:
    scores, labels, used = inputs(name, source)
    N, C = sum(len(y) for y in labels), labels[0].shape[1]
    frames = frames_from_videos(scores, labels)
    conditioned = {tau: int(condition_mask(frames, tau).sum()) for tau in TAUS}
    del frames
    fast = {device: time_fast(scores, labels, device, repeats) for device in devices}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference, start = {}, clock()
        for tau in TAUS:
            reference[tau] = reference_action_conditional(scores, labels, tau)
        reference_s, start = clock() - start, clock()
        reference_ap = reference_per_class_ap(scores, labels)
        reference_fmap_s = clock() - start

    some = fast[devices[0]]["sweep"]
    print(f"{name}: {N} frames x {C} classes ({used}); conditioned (frame, class) pairs {conditioned}; "
          f"counted class pairs {({tau: some[tau].n_pairs for tau in TAUS})}", flush=True)
    rows = []
    for device, f in fast.items():
        diffs = [max_difference(f["sweep"][tau], reference[tau]) for tau in TAUS]
        diff, exact = max(d for d, _ in diffs), all(e for _, e in diffs)
        common = {"dataset": name, "labels": used, "frames": N, "classes": C, "device": device,
                  "memory": probe_memory(name, used if used == "synthetic" else "real", device)}
        rows += [
            {**common, "what": "action-conditional P/R/F1/mAP, tau 0+20 (sweep)", "fast_s": f["sweep_s"],
             "reference_s": reference_s, "max_abs_diff": diff, "exact": exact},
            {**common, "what": "action-conditional P/R/F1/mAP, tau 0+20 (2 calls)", "fast_s": f["single_s"],
             "reference_s": reference_s, "max_abs_diff": diff, "exact": exact},
            {**common, "what": "per-class frame AP (f-mAP)", "fast_s": f["fmap_s"], "reference_s": reference_fmap_s,
             "max_abs_diff": float(np.nanmax(np.abs(f["ap"] - reference_ap))),
             "exact": bool((np.isnan(f["ap"]) == np.isnan(reference_ap)).all())},
        ]
    return rows


#: The JSON record's columns (``benchmarks/records.py``).
COLUMNS = [
    dict(label="dataset", cell="{dataset}"),
    dict(label="frames x classes", cell="{frames:,} x {classes}"),
    dict(label="device", cell="{device}"), dict(label="what", cell="{what}"),
    dict(label="fast s (wall / CPU)", cell="{fast_wall_s:.3f} / {fast_cpu_s:.3f}"),
    dict(label="reference s (wall / CPU)",
         cell="{reference_wall_s:.2f} / {reference_cpu_s:.2f}"),
    dict(label="speed-up (wall / CPU)",
         cell="{speedup_wall:.1f}x / {speedup_cpu:.1f}x"),
    dict(label="max |diff|", cell="{max_abs_diff:.1e}"),
    dict(label="peak memory", cell="{memory}"),
]


def record_rows(rows: list[dict]) -> list[dict]:
    """The measured rows as the JSON record's rows: wall and CPU seconds apart, and
    speed-ups (the CPU-time one only where the fast path ran on the CPU)."""
    out = []
    for r in rows:
        (fast_wall, fast_cpu), (ref_wall, ref_cpu) = r["fast_s"], r["reference_s"]
        kept = ("dataset", "labels", "frames", "classes", "device", "what",
                "max_abs_diff", "exact", "memory")
        row = {k: r[k] for k in kept}
        row.update(fast_wall_s=fast_wall, fast_cpu_s=fast_cpu,
                   reference_wall_s=ref_wall, reference_cpu_s=ref_cpu,
                   speedup_wall=ref_wall / fast_wall)
        if r["device"] == "cpu":
            row["speedup_cpu"] = ref_cpu / fast_cpu
        out.append(row)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", nargs="+", default=["cpu"], choices=["cpu", "cuda"],
                        help="where the fast path runs (the reference always runs on the CPU)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--labels", default="auto", choices=["auto", "real", "synthetic"])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of the fast path (best is kept)")
    parser.add_argument("--out", type=Path,
                        help="also write the run as a JSON record here "
                             "(benchmarks/render_tables.py renders it in the README)")
    parser.add_argument("--probe", nargs=2, metavar=("DATASET", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:  # child process of probe_memory: print its own peak memory as JSON
        name, device = args.probe
        scores, labels, _ = inputs(name, args.labels)
        scores_on = [torch.from_numpy(s).to(device) for s in scores]
        labels_on = [torch.from_numpy(y).to(device) for y in labels]
        before = current_rss_mb()
        reset = reset_peak_rss()  # so the peak is the sweep's, not the input building's
        action_conditional_sweep(scores_on, labels_on, TAUS)
        probe = {"inputs_mb": before, "peak_mb": status_mb("VmHWM") if reset else peak_rss_mb()}
        if device == "cuda":
            probe["gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        print(json.dumps(probe))
        return 0
    if "cuda" in args.devices and not torch.cuda.is_available():
        raise SystemExit("--devices cuda: no CUDA device")
    seed_everything(0)
    rows = [row for name in args.datasets for row in run(name, args.labels, args.devices, args.repeats)]
    print(f"\nMachine: {machine()}")
    print("Seconds as wall / CPU time of this process (CPU time is less disturbed by other jobs; "
          "on CUDA only wall time means anything)")
    print(f"{'dataset':12} {'frames x C':>12} {'device':6} {'what':50} {'fast s':>13} {'reference s':>15} "
          f"{'speed-up':>13} {'max |diff|':>10} {'exact':>5}  peak memory")
    for r in rows:
        (fast_wall, fast_cpu), (ref_wall, ref_cpu) = r["fast_s"], r["reference_s"]
        cpu_speedup = f"{ref_cpu / fast_cpu:5.1f}x" if r["device"] == "cpu" else "    -"
        print(f"{r['dataset']:12} {r['frames']:>8}x{r['classes']:<3} {r['device']:6} {r['what']:50} "
              f"{fast_wall:6.3f}/{fast_cpu:6.3f} {ref_wall:7.2f}/{ref_cpu:7.2f} "
              f"{ref_wall / fast_wall:6.1f}x/{cpu_speedup} "
              f"{r['max_abs_diff']:10.1e} {str(r['exact']):>5}  {r['memory']}")
    ok = all(r["exact"] and r["max_abs_diff"] <= 1e-9 for r in rows)
    print("all exact to 1e-9" if ok else "NOT EXACT")
    if args.out:
        from benchmarks.records import make_record, write_record

        gpu = torch.cuda.get_device_name() if "cuda" in args.devices else None
        record = make_record(
            "bench_metrics", "Action-conditional metrics against the loop reference",
            dict(cpu=machine(), cores=os.cpu_count(), gpu=gpu,
                 torch_threads=torch.get_num_threads()),
            COLUMNS, record_rows(rows), exact=ok,
        )
        print(f"record written to {write_record(args.out, record)}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
