"""Reading a semi-real v2 record: paired differences over seeds and their intervals.

The record is the JSON that ``benchmarks/bench_semireal_v2.py`` writes: ``runs`` keyed
``"<obs model>/<condition>/v<visibility>/<model>/seed<s>"`` (f-mAP and mAP_AC x100,
pair APs as fractions), ``dataset_info`` keyed
``"<obs model>/<condition>/v<v>/seed<s>"``.
Every function reads whatever runs the record holds: a quantity is computed over the
seeds where all the runs it needs are present, and an interval needs two such seeds.

Intervals (:class:`mladlib.intervals.Interval`) are two-sided Student t intervals of the
mean over seeds, with the sample standard deviation (ddof 1) and ``n - 1`` degrees of
freedom, at the protocol's 95 per cent.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from .intervals import INTERVAL_KIND, Interval  # noqa: F401  (re-exported)

Record = Mapping[str, Any]
MAIN = dict(obs_model="m1", visibility=1.0)


def run_key(obs_model: str, condition: str, visibility: float, model: str,
            seed: int) -> str:
    """The record's key of one run (the runner's format)."""
    return f"{obs_model}/{condition}/v{visibility:g}/{model}/seed{seed}"


def data_key(obs_model: str, condition: str, visibility: float, seed: int) -> str:
    """The record's key of one built dataset (the runner's format)."""
    return f"{obs_model}/{condition}/v{visibility:g}/seed{seed}"


def join_records(records: Sequence[Record], names: Sequence[str] | None = None
                 ) -> dict[str, Any]:
    """One record from several of one protocol, budget and dataset (the stage files
    of a dataset, or the files of processes that split the runs): their ``runs`` and
    ``dataset_info`` together. A run in two inputs must hold the same numbers in both;
    ``ValueError`` names the input (``names``, else its position) that disagrees."""
    if not records:
        raise ValueError("no record to join")
    names = list(names) if names is not None else [f"record {i}" for i in
                                                   range(len(records))]
    fixed = ("protocol", "budget", "dataset")
    joined: dict[str, Any] = {k: records[0][k] for k in fixed}
    joined.update(runs={}, dataset_info={},
                  started=min(r.get("started", "") for r in records))
    for name, record in zip(names, records):
        other = [k for k in fixed if record.get(k) != joined[k]]
        if other:
            raise ValueError(f"{name} holds another {' and '.join(other)} than "
                             f"{names[0]}")
        for section in ("runs", "dataset_info"):
            for key, value in record[section].items():
                old = joined[section].get(key)
                if (section == "runs" and old is not None and json.dumps(
                        old, sort_keys=True) != json.dumps(value, sort_keys=True)):
                    raise ValueError(f"{name}: run {key} differs from the same run in "
                                     "another input")
                joined[section][key] = value
    return joined


def metric(run: Mapping[str, Any], name: str = "f-mAP") -> float:
    """One number of a run, x100: ``"f-mAP"``, ``"mAP_AC@0"`` or ``"mAP_AC@20"``."""
    if name == "f-mAP":
        return float(run["frame_map"])
    if name.startswith("mAP_AC@"):
        return float(run["action_conditional"][name.split("@")[1]]["mAP_AC"])
    raise ValueError(f"unknown metric {name!r} (f-mAP, mAP_AC@0 or mAP_AC@20)")


def seeds_of(record: Record) -> list[int]:
    return list(record["protocol"]["seeds"])


def per_seed(record: Record, model: str, condition: str = "real",
             obs_model: str = "m1", visibility: float = 1.0,
             name: str = "f-mAP") -> dict[int, float]:
    """``{seed: value}`` of one model on one condition, over the seeds recorded."""
    runs = record["runs"]
    out = {}
    for s in seeds_of(record):
        run = runs.get(run_key(obs_model, condition, visibility, model, s))
        if run is not None:
            out[s] = metric(run, name)
    return out


def _paired(a: Mapping[int, float], b: Mapping[int, float], sign: float = 1.0
            ) -> dict[int, float]:
    return {s: a[s] + sign * b[s] for s in a if s in b}


def difference(record: Record, a: str, b: str, condition: str = "real",
               **where: Any) -> Interval:
    """Paired per-seed ``a - b`` on one condition (seeds where both ran)."""
    return Interval(_paired(per_seed(record, a, condition, **where),
                            per_seed(record, b, condition, **where), -1.0))


def class_differences(record: Record, a: str, b: str, condition: str = "real",
                      obs_model: str = "m1", visibility: float = 1.0
                      ) -> dict[int, np.ndarray]:
    """Per seed, each class's test AP of ``a`` minus that of ``b`` (x100), shape (C,);
    NaN where a class has no test AP (absent from the test split of that condition)."""
    out = {}
    for s in seeds_of(record):
        ra = record["runs"].get(run_key(obs_model, condition, visibility, a, s))
        rb = record["runs"].get(run_key(obs_model, condition, visibility, b, s))
        if ra is None or rb is None:
            continue
        ap_a, ap_b = (np.array([np.nan if x is None else x for x in r["per_class_ap"]])
                      for r in (ra, rb))
        out[s] = ap_a - ap_b
    return out


def dependency(record: Record, a: str, b: str, **where: Any) -> Interval:
    """The difference of differences ``D(a - b) = [a - b]_real - [a - b]_control``,
    per seed (seeds where all four runs are present)."""
    real = difference(record, a, b, "real", **where).values
    control = difference(record, a, b, "control", **where).values
    return Interval(_paired(real, control, -1.0))


def between(x: Interval, y: Interval) -> Interval:
    """Paired per-seed ``x - y`` of two per-seed quantities (e.g. D at two
    visibilities)."""
    return Interval(_paired(x.values, y.values, -1.0))


def stopping_counts(record: Record, stage: str | None = None
                    ) -> dict[str, Counter]:
    """Per model, how the trained runs ended: ``Counter(plateau=n, cap=m)`` (derived
    runs such as ``cf-smooth`` have no stopping of their own and are left out)."""
    out: dict[str, Counter] = {}
    for run in record["runs"].values():
        if "ended_by" not in run or (stage is not None and run.get("stage") != stage):
            continue
        out.setdefault(run["model"], Counter())[run["ended_by"]] += 1
    return out


def cap_share_too_high(counts: Mapping[str, Counter], limit: float = 0.2) -> list[str]:
    """Models of which more than ``limit`` of the runs ended at the cap (the protocol's
    rule: their stage's budget is wrong and no result of it is read)."""
    return sorted(m for m, c in counts.items()
                  if sum(c.values()) and c["cap"] / sum(c.values()) > limit)


def remaining(record: Record, planned: Iterable[Mapping[str, Any]]
              ) -> dict[str, dict[str, Any]]:
    """Per stage: runs planned, done, and ``left[(model, condition, visibility)]``, the
    seeds still to run.

    ``planned`` is the runner's plan (``planned_runs``): dicts with ``stage``,
    ``model``, ``condition``, ``visibility``, ``seed`` and ``key``. CF's derived
    ``cf-smooth`` is not a planned run.
    """
    out: dict[str, dict[str, Any]] = {}
    for spec in planned:
        stage = out.setdefault(spec["stage"], {"planned": 0, "done": 0, "left": {}})
        stage["planned"] += 1
        if spec["key"] in record["runs"]:
            stage["done"] += 1
        else:
            where = (spec["model"], spec["condition"], spec["visibility"])
            stage["left"].setdefault(where, []).append(spec["seed"])
    return out


def learning_curves(record: Record, model: str, condition: str = "real",
                    obs_model: str = "m1", visibility: float = 1.0
                    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{seed: (steps, validation f-mAP x100)}`` of one model's recorded runs."""
    out = {}
    for s in seeds_of(record):
        run = record["runs"].get(run_key(obs_model, condition, visibility, model, s))
        if run is not None and run.get("validation_curve"):
            curve = run["validation_curve"]
            out[s] = (np.array([c["step"] for c in curve]),
                      np.array([c["val_frame_map"] for c in curve]))
    return out


def curve_band(curves: Mapping[int, tuple[np.ndarray, np.ndarray]]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(steps, mean, low, high, seeds running)`` over the union of check steps: at
    each step the mean, minimum and maximum over the seeds whose run reached that check
    (a run that stopped drops out, so ``seeds running`` falls at the right end)."""
    steps = np.array(sorted({int(x) for st, _ in curves.values() for x in st}))
    table = np.full((len(curves), len(steps)), np.nan)
    for row, (st, val) in enumerate(curves.values()):
        table[row, np.searchsorted(steps, st)] = val
    count = (~np.isnan(table)).sum(0)  # every step has at least one seed: no NaN
    return (steps, np.nanmean(table, 0), np.nanmin(table, 0), np.nanmax(table, 0),
            count)


def rank_agreement(rows: np.ndarray, cooccurrence: np.ndarray) -> float:
    """Mean over classes of the Spearman correlation between a class's CB attention row
    ``rows[i]`` (C,) and its co-occurrence row ``cooccurrence[i]`` (C,), ``j != i``.
    Classes whose co-occurrence row is undefined (never present: NaN) or whose attention
    row is all zero (never present at test) or constant are left out."""
    C = len(rows)
    off = ~np.eye(C, dtype=bool)
    values = []
    for i in range(C):
        a = np.asarray(rows[i], float)[off[i]]
        p = np.asarray(cooccurrence[i], float)[off[i]]
        if not np.isfinite(p).all() or np.ptp(a) == 0 or np.ptp(p) == 0:
            continue
        values.append(stats.spearmanr(a, p).statistic)
    return float(np.mean(values)) if values else math.nan


def attention_agreement(record: Record, condition: str = "real",
                        obs_model: str = "m1", visibility: float = 1.0
                        ) -> dict[int, list[float]]:
    """``{seed: [rank agreement per layer]}`` of the MLAD runs that recorded CB
    attention rows, against the training labels' ``P(j | i)`` of the same dataset."""
    out = {}
    for s in seeds_of(record):
        run = record["runs"].get(run_key(obs_model, condition, visibility, "mlad", s))
        info = record["dataset_info"].get(data_key(obs_model, condition, visibility, s))
        if not run or "cb_attention_rows" not in run or not info:
            continue
        cooc = np.array([[np.nan if x is None else x for x in row]
                         for row in info["train_cooccurrence"]])
        out[s] = [rank_agreement(np.array(layer), cooc)
                  for layer in run["cb_attention_rows"]]
    return out


def pair_differences(record: Record, a: str, b: str, tau: int,
                     condition: str = "real", obs_model: str = "m1",
                     visibility: float = 1.0) -> dict[str, dict[int, float]]:
    """Per counted pair ``"i,j"``: ``{seed: AP_a(i | j) - AP_b(i | j)}`` x100, over the
    seeds where both runs recorded pair APs and both counted the pair."""
    out: dict[str, dict[int, float]] = {}
    for s in seeds_of(record):
        ra = record["runs"].get(run_key(obs_model, condition, visibility, a, s), {})
        rb = record["runs"].get(run_key(obs_model, condition, visibility, b, s), {})
        if "pair_ap" not in ra or "pair_ap" not in rb:
            continue
        pa, pb = ra["pair_ap"][str(tau)], rb["pair_ap"][str(tau)]
        for key in pa.keys() & pb.keys():
            out.setdefault(key, {})[s] = 100 * (pa[key] - pb[key])
    return out


def pair_summary(differences: Mapping[str, Mapping[int, float]]
                 ) -> tuple[int, int, float]:
    """``(pairs, pairs whose mean difference is positive, share of the summed positive
    differences held by the top tenth of pairs)`` over the pairs seen on every seed
    (NaN share when no pair gains)."""
    seeds = set().union(*(d.keys() for d in differences.values()))
    means = np.array([np.mean(list(d.values())) for d in differences.values()
                      if set(d) == seeds])
    if not len(means):
        return 0, 0, math.nan
    ordered = np.sort(means)[::-1]
    top = ordered[: max(1, len(ordered) // 10)]
    gained = ordered[ordered > 0].sum()
    share = float(top.sum() / gained) if gained > 0 else math.nan
    return len(means), int((means > 0).sum()), share


def _capped(record: Record, stage: str, models: Iterable[str]) -> list[str]:
    too_many = set(cap_share_too_high(stopping_counts(record, stage)))
    return [m for m in models if m in too_many]


def _not_yet(x: Interval) -> str:
    return f"not yet ({x.n} paired seed{'s' * (x.n != 1)}; an interval needs 2)"


def protocol_readings(record: Record) -> list[tuple[str, str]]:
    """The readings the v2 protocol fixed in advance ("what would count as what"),
    applied to whatever the record holds: ``(question, reading)`` pairs. A reading is
    ``"not yet ..."`` until its runs give two paired seeds, and ``"not read ..."`` where
    more than 1 in 5 runs of a model it needs ended at the cap (the protocol's rule).
    A Charades record (``record["dataset"] == "charades"``) gets the main table's
    readings on its own stage, without CB only (not in its stage) and without the CB
    attention reading (its runs record no attention rows)."""
    out = []
    charades = record.get("dataset") == "charades"
    first = "charades" if charades else "main"  # the stage at v = 1, model 1

    def guarded(question, stage, models, x, text, digits=1):
        capped = _capped(record, stage, models)
        if capped:
            out.append((question, f"not read: over 1 in 5 runs of {capped} at the cap"))
        elif not x.ready:
            out.append((question, _not_yet(x)))
        else:
            out.append((question, f"{text(x)}: {x.format(digits=digits)}"))

    def dep(x: Interval) -> str:
        if x.above(0):
            return "yes, interval above 0"
        if x.below(0):
            return "no; the interval lies below 0"
        under = " (any such gain is under 0.5 points)" if x.bounds[1] < 0.5 else ""
        return f"no gain detected at {x.n} seeds{under}"

    def above(yes: str, no: str):
        return lambda x: yes if x.above(0) else no

    guarded("D(MLAD - CF): does cross-class dependency help MLAD?", first,
            ["mlad", "cf"], dependency(record, "mlad", "cf"), dep)
    guarded("[MLAD - CF] on the control: is MLAD's gain persistence?", first,
            ["mlad", "cf"], difference(record, "mlad", "cf", "control"),
            above("yes, interval above 0", "not shown (interval reaches 0)"))
    if not charades:
        guarded("D(CB - CF): does the co-occurrence branch use co-occurrence?", first,
                ["cb", "cf"], dependency(record, "cb", "cf"),
                above("yes, interval above 0", "not shown (interval reaches 0)"))
    guarded("D(MLAD - TB): does CB add dependency beyond TB?", first,
            ["mlad", "tb"], dependency(record, "mlad", "tb"),
            above("yes, interval above 0", "not shown (interval reaches 0)"))
    guarded("[TB - cf-smooth] on real labels: does TB do more than smoothing?",
            first, ["tb", "cf"], difference(record, "tb", "cf-smooth"),
            above("TB does more than smoothing", "TB's gain is no more than smoothing"))
    if not charades:  # look-alikes and the sweep are MultiTHUMOS stages
        m2 = between(dependency(record, "mlad", "cf", obs_model="m2"),
                     dependency(record, "mlad", "cf"))
        guarded("D_m2(MLAD - CF) - D_m1(MLAD - CF): do look-alikes make dependency pay "
                "more?", "lookalike", ["mlad", "cf"], m2,
                above("yes, interval above 0", "not shown (interval reaches 0)"))
        high = between(dependency(record, "mlad", "cf", visibility=4.0),
                       dependency(record, "mlad", "cf"))
        guarded("D(v = 4) - D(v = 1): does dependency matter less when classes are "
                "visible?", "sweep", ["mlad", "cf"], high,
                lambda x: "yes, interval below 0" if x.below(0) else
                "not shown (interval reaches 0 or lies above)")
        for peak in (1.0, 2.0):  # "inverted U": both neighbours, fixed in advance
            at = dependency(record, "mlad", "cf", visibility=peak)
            low = between(at, dependency(record, "mlad", "cf", visibility=0.5))
            top = between(at, dependency(record, "mlad", "cf", visibility=4.0))
            question = f"a peak of D(MLAD - CF) at v = {peak:g}?"
            if _capped(record, "sweep", ["mlad", "cf"]):
                out.append((question, "not read: over 1 in 5 sweep runs at the cap"))
            elif not (low.ready and top.ready):
                out.append((question, _not_yet(low if not low.ready else top)))
            else:
                yes = low.above(0) and top.above(0)
                out.append((question, f"{'yes' if yes else 'not shown'}: minus v = 0.5 "
                            f"{low.format()}, minus v = 4 {top.format()}"))
    real = attention_agreement(record, "real")
    control = attention_agreement(record, "control")
    layers = max((len(v) for v in real.values()), default=0)
    for layer in range(layers):
        x = Interval({s: real[s][layer] - control[s][layer]
                      for s in real if s in control and len(control[s]) > layer})
        guarded(f"CB attention, layer {layer + 1}: does it follow the real "
                "co-occurrence (real minus control rank agreement)?", first, ["mlad"],
                x, above("yes, interval above 0", "not shown (interval reaches 0)"),
                digits=2)  # a rank correlation
    if not layers and not charades:  # the Charades stage records no attention rows
        out.append(("CB attention: does it follow the real co-occurrence?",
                    _not_yet(Interval({}))))
    return out
