"""The paper's ablations on the embedded dataset (tables 3, 4, 5, S2, S3), over several seeds.

Trains, with the book's ``synthetic`` preset and one change at a time, on every seed (each
seed draws a new dataset *and* a new initialisation, as in ``bench_synth.py``):

* table 3: MLAD with L = 1, 2, 3, 4, 5 layers (the paper's own setting is L = 5);
* table 4: MLAD trained on fixed-length windows (``variable_length=False``) against the
  preset's variable lengths, each then evaluated with windows of T/4, T/2, 3T/4 and T steps;
* table 5: the CF baseline, CB only, TB only and MLAD;
* table S2: MLAD with alpha fixed at 0.5;
* table S3: MLAD without the loss on the initial logits (``initial_loss_weight=0``);
* chapter 6's exercises (``EXERCISE_RUNS``): L = 6; fixed-length training at T/4, T/2 and
  3T/4, each evaluated at its own length; initial-loss weights 0.25 and 4 (the record also
  holds alpha learned on the temporal branch, a run of an option since removed); and, as a
  follow-up to exercise 2, the fixed lengths again with as many optimizer steps as a run at T
  (``-same-steps``: an epoch of a shorter window otherwise holds more windows).

Runs that equal the preset (MLAD, CF, CB only, TB only) are the same cached runs as
``bench_synth.py``'s. For every run it records the test f-mAP and mAP_AC at tau = 0 and
20 (x100), the learned alpha of each MLAD layer, the best epoch, the training time and the
run's cache key (which covers the preset and the embedded dataset's recipe, so the book can
tell a stale file);
it prints one table per paper table (mean +- std over seeds) and writes
``benchmarks/results/ablations.json`` (read by the book's chapter 6, which prints the paper's
numbers beside these). Usage::

    python benchmarks/bench_ablations.py [--seeds 0 1 2] [--out benchmarks/results/ablations.json]
    python benchmarks/bench_ablations.py --quick --out /tmp/ablations_quick.json   # 2 epochs, seed 0: tests the script
    python benchmarks/bench_ablations.py --runs mlad-L5    # add/replace runs in the existing file
    python benchmarks/bench_ablations.py --runs mlad-L6 mlad-fixed-length-16 mlad-fixed-length-32 \
        mlad-fixed-length-48 mlad-initial-0.25 mlad-initial-4   # the exercises
    python benchmarks/bench_ablations.py --runs mlad-fixed-length-16-same-steps \
        mlad-fixed-length-32-same-steps mlad-fixed-length-48-same-steps   # exercise 2's follow-up
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_ablations.py --converge

``--converge`` trains every run under the stopping rule of
``benchmarks/CONVERGENCE_PROTOCOL.md`` (``bench_synth.CONVERGE``; seed 0 unless
``--seeds``) and writes ``benchmarks/results/ablations_converged.json`` (never the
fixed-budget file), with each run's stopping outcome and validation curve; ``--runs``
merges into it as above.

``--runs`` trains only the named runs (on the file's seeds) and merges them into the existing
``--out`` file, which must have been produced for the same preset, epochs and datasets; the
file's ``updates`` list records each such merge (command, date, machine, runs), since the
merged runs may come from another machine than the rest. Where ``--out`` does not exist
yet, ``--runs`` writes a new file holding only those runs (a sweep recorded in parts,
e.g. the tables' runs before the exercises'); the tables are printed once they are all in.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mladlib import synth
from mladlib.convergence import all_stops, stopping_summary
from mladlib.train import RunResult, cached_train, config_key, evaluate, load_splits, make_config
from mladlib.utils import atomic_path, cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_synth import CONVERGE  # noqa: E402  (one stopping rule for both scripts)
from records import library_state  # noqa: E402

DEFAULT_OUT = Path(__file__).parent / "results" / "ablations.json"
CONVERGED_OUT = Path(__file__).parent / "results" / "ablations_converged.json"
QUICK_OUT = Path(tempfile.gettempdir()) / "mladlib_ablations_quick.json"
QUICK_EPOCHS = 2
TABLE3_LAYERS = (1, 2, 3, 4, 5)
UNITS = ("f-mAP and mAP_AC x100 on the test split; alpha = sigmoid(alpha_logit) in [0, 1], on CB "
         "(on TB in a run whose overrides set alpha_branch='tb')")
#: An override value: the number of windows an epoch at the preset's window T holds on that
#: seed's training split (ceil(frames / T)), so a shorter window takes as many optimizer steps.
STEPS_AS_AT_T = "as at T"
#: Chapter 6's exercises: run name -> (exercise number, overrides of the preset). Their
#: solutions in the chapter read these runs; the chapter's tables do not.
EXERCISE_RUNS: dict[str, tuple[int, dict[str, Any]]] = {
    "mlad-L6": (1, {"num_layers": 6}),
    **{f"mlad-fixed-length-{t}": (2, {"variable_length": False, "window": t}) for t in (16, 32, 48)},
    # follow-up to exercise 2: as many optimizer steps as a run at T (a quarter of the frames at T/4)
    **{f"mlad-fixed-length-{t}-same-steps": (2, {"variable_length": False, "window": t,
                                                 "windows_per_epoch": STEPS_AS_AT_T}) for t in (16, 32, 48)},
    # exercise 3's "mlad-alpha-tb" (alpha on the temporal branch, as the public code) is in
    # the record but can no longer be rerun: its option, alpha_branch, is gone, since
    # sigmoid(-a) = 1 - sigmoid(a) makes it the same training with alpha's logit negated
    "mlad-initial-0.25": (4, {"initial_loss_weight": 0.25}),
    "mlad-initial-4": (4, {"initial_loss_weight": 4.0}),
}


def run_specs(preset_layers: int) -> dict[str, dict[str, Any]]:
    """Run name -> ``{"model", "overrides"}``; a run that equals the preset takes the model's name."""
    specs: dict[str, dict[str, Any]] = {name: {"model": name, "overrides": {}} for name in ("cf", "cb", "tb", "mlad")}
    for layers in sorted({*TABLE3_LAYERS, preset_layers}):
        if layers != preset_layers:
            specs[f"mlad-L{layers}"] = {"model": "mlad", "overrides": {"num_layers": layers}}
    specs["mlad-fixed-length"] = {"model": "mlad", "overrides": {"variable_length": False}}
    specs["mlad-fixed-alpha"] = {"model": "mlad-fixed-alpha", "overrides": {}}
    specs["mlad-no-initial-loss"] = {"model": "mlad", "overrides": {"initial_loss_weight": 0.0}}
    for name, (exercise, overrides) in EXERCISE_RUNS.items():
        specs[name] = {"model": "mlad", "overrides": overrides, "exercise": exercise}
    return specs


def tables(preset_layers: int) -> dict[str, list[tuple[str, str]]]:
    """Paper table -> its rows as (row label, run name)."""
    layers = sorted({*TABLE3_LAYERS, preset_layers})
    return {
        "table3": [(f"L = {l}", "mlad" if l == preset_layers else f"mlad-L{l}") for l in layers],
        "table4": [("fixed training length", "mlad-fixed-length"), ("variable training length", "mlad")],
        "table5": [("No CB, no TB (CF)", "cf"), ("CB only", "cb"), ("TB only", "tb"), ("CB + TB (MLAD)", "mlad")],
        "tableS2": [("fixed alpha = 0.5", "mlad-fixed-alpha"), ("learned alpha", "mlad")],
        "tableS3": [("without initial loss", "mlad-no-initial-loss"), ("with initial loss", "mlad")],
    }


def eval_lengths(window: int) -> list[int]:
    """Table 4's evaluation lengths T/4, T/2, 3T/4, T for a training window of T steps."""
    if window % 4:
        raise ValueError(f"the preset's window {window} is not a multiple of 4")
    return [window * k // 4 for k in (1, 2, 3, 4)]


def windows_at_T(seed: int, window: int) -> int:
    """Windows in one epoch of the preset (window ``window``) on ``seed``'s training split."""
    config = make_config("synthetic", seed=seed, synthetic_seed=seed)
    frames = int(np.sum(load_splits(config, ("train",)).train.frame_counts))
    return math.ceil(frames / window)


def learned_alphas(result: RunResult) -> list[float] | None:
    """``sigmoid(alpha_logit)`` of each MLAD layer, layer 1 first; None without learned alphas."""
    layers = getattr(result.model, "layers", None)
    if not layers or any(getattr(layer, "alpha_logit", None) is None for layer in layers):
        return None
    return [float(torch.sigmoid(layer.alpha_logit.detach())) for layer in layers]


def run(seeds: list[int], quick: bool = False, log=print, only: list[str] | None = None,
        converge: dict[str, int] | None = None) -> dict:
    """Train (or load) every run (or the runs named in ``only``) on every seed; with
    ``converge`` (``bench_synth.CONVERGE``) under that stopping rule, each run recording
    ``bench_synth.stopping_record`` too.

    Returns run name -> record of per-seed lists aligned with ``seeds``.
    """
    from bench_synth import stopping_record

    base = make_config("synthetic")
    window = base.window
    lengths = eval_lengths(window)
    specs = run_specs(base.num_layers)
    if only is not None:
        unknown = sorted(set(only) - set(specs))
        if unknown:
            raise ValueError(f"unknown run name(s) {unknown}; known: {sorted(specs)}")
        specs = {name: spec for name, spec in specs.items() if name in only}
    records: dict[str, dict[str, Any]] = {
        name: {**spec, "frame_map": [], "ac0": [], "ac20": [], "alpha": [], "best_epoch": [], "seconds": [],
               "train_seconds": [], "config_key": [],
               **({"stopping": []} if converge else {})}
        for name, spec in specs.items()
    }
    for name in ("mlad", "mlad-fixed-length"):
        if name in records:
                records[name]["eval_length"] = {str(t): [] for t in lengths}
    for seed in seeds:
        test = None
        for name, spec in specs.items():
            overrides = dict(spec["overrides"], seed=seed, synthetic_seed=seed,
                             **(converge or {}))
            if overrides.get("windows_per_epoch") == STEPS_AS_AT_T:
                overrides["windows_per_epoch"] = windows_at_T(seed, window)
            if quick:
                overrides["epochs"] = QUICK_EPOCHS
            config = make_config("synthetic", model=spec["model"], **overrides)
            start = time.perf_counter()
            result = cached_train(config)
            seconds = time.perf_counter() - start
            metrics = result.test_metrics
            r = records[name]
            r["frame_map"].append(100 * metrics["frame_map"])
            r["ac0"].append(100 * metrics["action_conditional"][0]["mAP_AC"])
            r["ac20"].append(100 * metrics["action_conditional"][20]["mAP_AC"])
            r["alpha"].append(learned_alphas(result))
            r["best_epoch"].append(result.best_epoch)
            r["seconds"].append(seconds)
            r["train_seconds"].append(result.history[-1]["elapsed_s"])  # when it was trained, cached or not
            r["config_key"].append(config_key(config))
            if converge:
                r["stopping"].append(stopping_record(config, result))
            line = (f"seed {seed} {name:<22s} f-mAP {r['frame_map'][-1]:6.2f}  mAP_AC(0) {r['ac0'][-1]:6.2f}  "
                    f"mAP_AC(20) {r['ac20'][-1]:6.2f}  (trained in {r['train_seconds'][-1]:.0f} s; "
                    f"{seconds:.0f} s now)")
            if "eval_length" in r:
                if test is None:
                    test = load_splits(config, ("test",)).test
                threads = torch.get_num_threads()
                torch.set_num_threads(config.num_threads or threads)  # as the trainer evaluates
                try:
                    for length in lengths:
                        value = evaluate(result.model, test, window=length, standard=False).frame_map
                        r["eval_length"][str(length)].append(100 * value)
                finally:
                    torch.set_num_threads(threads)
                line += "  eval T " + " ".join(f"{t}: {r['eval_length'][str(t)][-1]:.2f}" for t in lengths)
            log(line)
    return records


def _cell(values: list[float]) -> str:
    return f"{np.mean(values):6.2f} +- {np.std(values):4.2f}"


def format_tables(records: dict, layout: dict[str, list[tuple[str, str]]], lengths: list[int], seeds: list[int]) -> str:
    """One plain-text table per paper table, mean +- std over seeds (x100)."""
    out = []
    titles = {"table3": "Table 3: number of MLAD layers", "table5": "Table 5: the branches",
              "tableS2": "Table S2: learned vs fixed alpha", "tableS3": "Table S3: the initial loss"}
    for key, rows in layout.items():
        if key == "table4":
            out.append("Table 4: training length (rows: evaluation length; test f-mAP)")
            out.append(f"{'evaluation length':<20s}" + "".join(f"{label:>28s}" for label, _ in rows))
            for t in lengths:
                out.append(f"{'T = ' + str(t):<20s}"
                           + "".join(f"{_cell(records[name]['eval_length'][str(t)]):>28s}" for _, name in rows))
        else:
            out.append(titles[key])
            out.append(f"{'':<24s}{'f-mAP':>16s}{'mAP_AC tau=0':>16s}{'mAP_AC tau=20':>16s}{'train s':>9s}")
            for label, name in rows:
                r = records[name]
                out.append(f"{label:<24s}" + "".join(f"{_cell(r[k]):>16s}" for k in ("frame_map", "ac0", "ac20"))
                           + f"{np.mean(r['train_seconds']):9.0f}")
        out.append("")
    exercises = [(r["exercise"], name) for name, r in records.items() if "exercise" in r]
    if exercises:
        out.append("Chapter 6's exercises (test f-mAP; a fixed-length run at its own length)")
        for exercise, name in sorted(exercises):
            out.append(f"exercise {exercise}  {name:<22s}{_cell(records[name]['frame_map']):>16s}")
        out.append("")
    alphas = [(name, seed, a) for name, r in records.items() for seed, a in zip(seeds, r["alpha"]) if a]
    if alphas:
        out.append("Learned alpha per layer, layer 1 first (the weight of CB; of TB in mlad-alpha-tb)")
        for name, seed, a in alphas:
            out.append(f"{name:<22s} seed {seed:<3d}" + " ".join(f"{v:.3f}" for v in a))
    return "\n".join(out)


def machine_line(base) -> str:
    """CPU, threads and versions, for the results file."""
    return (f"{cpu_name()}, {base.num_threads or torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def merge_runs(args: argparse.Namespace, out: Path, lengths: list[int]) -> int:
    """Train ``args.runs`` on the seeds of the existing ``out`` file and merge them into it."""
    if not out.exists():
        raise SystemExit(f"--runs merges into an existing file; {out} does not exist")
    content = json.loads(out.read_text())
    base = make_config("synthetic")
    preset = base.to_dict()
    seeds = content["seeds"]
    if args.seeds is not None and list(args.seeds) != seeds:
        raise SystemExit(f"--runs uses the seeds of {out} ({seeds}), got --seeds {args.seeds}")
    if bool(content["quick"]) != args.quick:
        raise SystemExit(f"{out} has quick={content['quick']}; pass --quick accordingly")
    stale = [k for k in content["preset"] if content["preset"][k] != preset[k]]
    datasets = {str(s): synth.fingerprint(synth.sized_config(base.synthetic_size, s))
                for s in seeds}
    if stale or datasets != content["datasets"] or content["eval_lengths"] != lengths:
        raise SystemExit(f"{out} was produced for another preset ({stale}) or dataset recipe: "
                         "re-run the whole sweep instead of merging")
    started = time.perf_counter()
    if bool(content.get("stopping_rule")) != args.converge:
        raise SystemExit(f"{out} and this command differ in --converge; "
                         "pass it accordingly")
    converge = CONVERGE if args.converge else None
    records = run(seeds, quick=args.quick, only=args.runs, converge=converge)
    content["runs"].update(records)
    content["units"] = UNITS
    layout = tables(base.num_layers)
    content["tables"] = {key: [[label, name] for label, name in rows]
                         for key, rows in layout.items()}
    command = "python benchmarks/bench_ablations.py --runs " + " ".join(args.runs)
    command += " --converge" if args.converge else ""
    command += f" --out {args.out}" if args.out is not None else ""
    content.setdefault("updates", []).append({
        "command": command, "date": str(date.today()),
        "machine": machine_line(base.replace(**converge) if converge else base),
        "runs": list(records), "seconds": time.perf_counter() - started,
        "library": library_state()})
    missing = sorted({name for rows in layout.values() for _, name in rows} - set(content["runs"]))
    if missing:
        print(f"note: {out} still lacks runs {missing}; add them with --runs")
    else:
        print(format_tables(content["runs"], layout, lengths, seeds))
    with atomic_path(out, suffix=".json") as tmp:
        tmp.write_text(json.dumps(content, indent=1))
    print(f"merged {list(records)} into {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 1 2 (0 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_EPOCHS} epochs per run, seed 0 only: checks the script, not the results")
    parser.add_argument("--runs", nargs="+", default=None, metavar="NAME",
                        help="train only these runs: merged into --out where it exists, "
                        "else written to a new --out that names the runs it lacks")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"default: {DEFAULT_OUT} ({QUICK_OUT} with --quick, "
                        f"{CONVERGED_OUT} with --converge)")
    parser.add_argument("--converge", action="store_true",
                        help="train to the stopping rule of "
                        "benchmarks/CONVERGENCE_PROTOCOL.md (seed 0 unless --seeds)")
    args = parser.parse_args(argv)
    default_seeds = [0] if args.quick or args.converge else [0, 1, 2]
    seeds = args.seeds if args.seeds is not None else default_seeds
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        parser.error(f"--seeds must be distinct non-negative integers, got {seeds}")
    out = args.out if args.out is not None else (
        QUICK_OUT if args.quick else CONVERGED_OUT if args.converge else DEFAULT_OUT)
    if args.quick and out.resolve() == DEFAULT_OUT.resolve():
        parser.error(f"--quick results must not replace {DEFAULT_OUT} (the book reads it); choose another --out")
    if args.converge and out.resolve() == DEFAULT_OUT.resolve():
        parser.error(f"--converge results must not replace the fixed-budget record "
                     f"{DEFAULT_OUT}")

    base = make_config("synthetic")
    lengths = eval_lengths(base.window)
    if args.runs is not None and out.exists():
        return merge_runs(args, out, lengths)
    started = time.perf_counter()
    records = run(seeds, quick=args.quick, only=args.runs,
                  converge=CONVERGE if args.converge else None)
    layout = tables(base.num_layers)
    machine = machine_line(base.replace(**CONVERGE) if args.converge else base)
    command = "python benchmarks/bench_ablations.py --seeds " + " ".join(map(str, seeds))
    if args.quick:
        command += " --quick"
    if args.converge:
        command += " --converge"
    if args.runs is not None:
        command += " --runs " + " ".join(args.runs)
    if args.out is not None:
        command += f" --out {args.out}"
    print()
    print(f"Embedded dataset, synthetic preset{' (QUICK: 2 epochs)' if args.quick else ''}, seeds {seeds} "
          f"(mean +- std over seeds, x100); {machine}; {date.today()}")
    missing = sorted({name for rows in layout.values() for _, name in rows} - set(records))
    if missing:  # a sweep written in parts (--runs): the tables wait for the rest
        print(f"note: {out} lacks the table runs {missing}; add them with --runs")
    else:
        print(format_tables(records, layout, lengths, seeds))
    preset = base.to_dict()
    content = {
        "command": command, "date": str(date.today()), "machine": machine, "seeds": seeds, "quick": args.quick,
        "datasets": {str(seed): synth.fingerprint(synth.sized_config(base.synthetic_size, seed)) for seed in seeds},
        "epochs": QUICK_EPOCHS if args.quick else base.epochs,
        "preset": {k: preset[k] for k in ("hidden_dim", "num_layers", "window", "batch_size", "lr", "epochs",
                                          "dropout", "variable_length", "length_step")},
        "units": UNITS,
        "eval_lengths": lengths,
        "tables": {key: [[label, name] for label, name in rows] for key, rows in layout.items()},
        "runs": records,
        "total_seconds": time.perf_counter() - started,
    }
    if args.converge:
        ends = stopping_summary(all_stops(records))
        print(f"stopping: {ends.plateau} runs by the rule, {ends.cap} at the cap")
        content.update(stopping_rule=CONVERGE,
                       protocol="benchmarks/CONVERGENCE_PROTOCOL.md",
                       epochs=CONVERGE["epochs"] if not args.quick else QUICK_EPOCHS,
                       library=library_state())
    with atomic_path(out, suffix=".json") as tmp:
        tmp.write_text(json.dumps(content, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
