"""mladlib.semireal_analysis on small hand-made records whose answers are obvious, in
the format benchmarks/bench_semireal_v2.py writes."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mladlib import semireal_analysis as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_semireal_v2 as bench  # noqa: E402


def run(fmap: float, ended_by: str | None = "plateau", **extra) -> dict:
    out = {"frame_map": fmap, "action_conditional": {"0": {"mAP_AC": fmap + 1},
                                                    "20": {"mAP_AC": fmap + 2}}}
    if ended_by is not None:
        out["ended_by"] = ended_by
    return {**out, **extra}


def record(values: dict[tuple[str, str, int], float], **extra_runs) -> dict:
    """``values[(model, condition, seed)]`` = f-mAP of an m1, v = 1 run."""
    runs = {sa.run_key("m1", c, 1.0, m, s): {**run(x), "model": m, "stage": "main"}
            for (m, c, s), x in values.items()}
    runs.update(extra_runs)
    return {"protocol": {"seeds": [0, 1, 2, 3, 4]}, "runs": runs, "dataset_info": {}}


def test_keys_are_the_runner_s():
    assert sa.run_key("m2", "control", 0.5, "cf-smooth", 3) == bench.run_key(
        "m2", "control", 0.5, "cf-smooth", 3) == "m2/control/v0.5/cf-smooth/seed3"
    assert sa.data_key("m1", "real", 1.0, 0) == bench.data_key("m1", "real", 1.0, 0)


def test_interval_against_a_hand_computation():
    x = sa.Interval({0: 1.0, 1: 2.0, 2: 4.0})
    # mean 7/3; sample SD sqrt(((4/3)^2 + (1/3)^2 + (5/3)^2) / 2) = sqrt(7/3);
    # t(0.975, 2) = 4.302652729911275 (tables: 4.303)
    sd = math.sqrt(7 / 3)
    half = 4.302652729911275 * sd / math.sqrt(3)
    assert x.n == 3 and x.mean == pytest.approx(7 / 3) and x.sd == pytest.approx(sd)
    assert x.bounds == pytest.approx((7 / 3 - half, 7 / 3 + half))
    assert x.bounds == pytest.approx(
        stats.t.interval(0.95, 2, loc=7 / 3, scale=stats.sem([1, 2, 4])))
    assert x.above(-1.5) and not x.above(0) and x.contains(0) and not x.below(0)
    assert x.format() == "+2.3 [-1.5, +6.1] (n=3)"
    assert x.format(signed=False) == "2.3 [-1.5, 6.1] (n=3)"
    assert x.format(digits=2) == "+2.33 [-1.46, +6.13] (n=3)"


def test_interval_needs_two_seeds():
    one = sa.Interval({3: 2.5})
    assert not one.ready and one.bounds is None and math.isnan(one.sd)
    assert not one.above(-100) and not one.below(100) and not one.contains(2.5)
    assert one.format() == "+2.5 (n=1), interval not yet"
    assert one.format(signed=False, digits=2) == "2.50 (n=1), interval not yet"
    assert sa.Interval({}).format() == "not yet (no seed)"


def test_differences_are_paired_per_seed_and_skip_missing_runs():
    values = {}
    for s in (0, 1, 2):
        values.update({("cf", "real", s): 10.0 + s, ("mlad", "real", s): 13.0 + s,
                       ("cf", "control", s): 8.0, ("mlad", "control", s): 9.0})
    del values[("mlad", "control", 2)]  # seed 2's control MLAD not run yet
    rec = record(values)
    assert sa.difference(rec, "mlad", "cf").values == {0: 3.0, 1: 3.0, 2: 3.0}
    assert sa.difference(rec, "mlad", "cf", "control").values == {0: 1.0, 1: 1.0}
    dod = sa.dependency(rec, "mlad", "cf")
    assert dod.values == {0: 2.0, 1: 2.0} and dod.sd == 0 and dod.bounds == (2.0, 2.0)
    mac = sa.difference(rec, "mlad", "cf", name="mAP_AC@20")
    assert mac.values == {0: 3.0, 1: 3.0, 2: 3.0}
    assert sa.between(sa.Interval({0: 5.0, 1: 1.0}), dod).values == {0: 3.0, 1: -1.0}
    with pytest.raises(ValueError, match="unknown metric"):
        sa.per_seed(rec, "cf", name="mAP")


def test_stopping_counts_leave_derived_runs_out():
    smooth = {**run(2.0, None), "model": "cf-smooth", "stage": "main"}
    capped = {**run(1.0, "cap"), "model": "tb", "stage": "main"}
    rec = record({("cf", "real", 0): 1.0, ("tb", "real", 0): 1.0},
                 **{"m1/real/v1/cf-smooth/seed0": smooth,
                    "m1/real/v1/tb/seed1": capped})
    counts = sa.stopping_counts(rec)
    assert set(counts) == {"cf", "tb"}
    assert counts["tb"] == {"plateau": 1, "cap": 1} and counts["cf"] == {"plateau": 1}
    assert sa.cap_share_too_high(counts) == ["tb"]
    assert sa.stopping_counts(rec, "sweep") == {}


def test_remaining_against_the_runner_s_plan():
    rec = record({("cf", "real", 0): 1.0, ("cf", "control", 0): 1.0})
    left = sa.remaining(rec, bench.planned_runs("multithumos"))
    assert {k: (v["planned"], v["done"]) for k, v in left.items()} == {
        "main": (50, 2), "lookalike": (50, 0), "sweep": (90, 0)}
    assert left["main"]["left"][("cf", "real", 1.0)] == [1, 2, 3, 4]
    assert left["main"]["left"][("mlad", "control", 1.0)] == [0, 1, 2, 3, 4]
    assert left["sweep"]["left"][("tb", "real", 0.5)] == [0, 1, 2, 3, 4]
    for stage in left.values():  # every planned run is done or left, once
        assert stage["done"] + sum(map(len, stage["left"].values())) == stage["planned"]


def test_learning_curves_and_their_band():
    def curve(vals):
        return [{"step": 50 * (k + 1), "val_frame_map": v, "loss": 0.1}
                for k, v in enumerate(vals)]

    rec = record({}, **{
        "m1/real/v1/cf/seed0": {**run(1.0), "validation_curve": curve([1, 2, 3])},
        "m1/real/v1/cf/seed2": {**run(1.0), "validation_curve": curve([3, 4])}})
    curves = sa.learning_curves(rec, "cf")
    assert list(curves) == [0, 2] and list(curves[0][0]) == [50, 100, 150]
    steps, mean, low, high, count = sa.curve_band(curves)
    assert list(steps) == [50, 100, 150] and list(count) == [2, 2, 1]
    assert list(mean) == [2, 3, 3] and list(low) == [1, 2, 3]
    assert list(high) == [3, 4, 3]


def test_rank_agreement():
    cooc = np.array([[1, 0.9, 0.1, 0.5], [0.2, 1, 0.3, 0.8],
                     [0.1, 0.4, 1, 0.7], [0.6, 0.2, 0.9, 1]])
    assert sa.rank_agreement(cooc, cooc) == pytest.approx(1.0)
    assert sa.rank_agreement(-cooc, cooc) == pytest.approx(-1.0)
    rows = cooc.copy()
    rows[1] = 0  # class 1 never present at test: left out, not counted as zero
    undefined = cooc.copy()
    undefined[2] = np.nan  # class 2 never present in training
    assert sa.rank_agreement(rows, undefined) == pytest.approx(1.0)


def test_attention_agreement_reads_rows_and_the_matching_cooccurrence():
    cooc = [[1, 0.9, 0.1], [0.2, 1, 0.8], [0.1, 0.4, 1]]
    rec = record({}, **{"m1/real/v1/mlad/seed1": {
        **run(1.0), "cb_attention_rows": [cooc, [[-x for x in r] for r in cooc]]}})
    rec["dataset_info"]["m1/real/v1/seed1"] = {"train_cooccurrence": cooc}
    # two off-diagonal values per row: each class's Spearman is +1 or -1
    assert sa.attention_agreement(rec) == {1: [pytest.approx(1.0), pytest.approx(-1.0)]}
    assert sa.attention_agreement(rec, "control") == {}


def test_pair_differences_and_summary():
    def pairs(values):
        return {"pair_ap": {"0": values, "20": {}}}

    rec = record({}, **{
        "m1/real/v1/mlad/seed0": {**run(1.0), **pairs({"0,1": 0.5, "1,0": 0.2})},
        "m1/real/v1/cf/seed0": {**run(1.0), **pairs({"0,1": 0.3, "1,0": 0.3})},
        "m1/real/v1/mlad/seed1": {**run(1.0), **pairs({"0,1": 0.6, "2,1": 0.9})},
        "m1/real/v1/cf/seed1": {**run(1.0), **pairs({"0,1": 0.2, "2,1": 0.1})}})
    diff = sa.pair_differences(rec, "mlad", "cf", 0)
    assert diff["0,1"] == {0: pytest.approx(20.0), 1: pytest.approx(40.0)}
    assert diff["1,0"] == {0: pytest.approx(-10.0)}
    # only "0,1" was counted on both seeds: one pair, gaining, holding the whole gain
    assert sa.pair_summary(diff) == (1, 1, pytest.approx(1.0))
    assert sa.pair_differences(rec, "mlad", "cf", 20) == {}
    # twenty pairs: the top two hold 5 + 4 of the positive sum 5 + 4 + 9 * 0.5 = 13.5
    many = {f"{k},0": {0: x} for k, x in enumerate([5.0, 4.0] + [0.5] * 9 + [-1.0] * 9)}
    assert sa.pair_summary(many) == (20, 11, pytest.approx(9 / 13.5))
    assert math.isnan(sa.pair_summary({"0,1": {0: -1.0}})[2])


def test_figures_draw_what_they_are_given():
    import matplotlib

    matplotlib.use("Agg")
    with matplotlib.rc_context():  # apply_style's settings stay inside this test
        _draw_figures()


def _draw_figures():
    import matplotlib.pyplot as plt

    from mladlib.viz import apply_style
    from mladlib.viz.semireal import (plot_intervals, plot_learning_curves,
                                      plot_visibility_curve)
    from mladlib.viz.style import MIN_TEXT_PX, displayed_text_px

    apply_style()
    curves = {0: (np.array([50, 100]), np.array([1.0, 2.0])),
              1: (np.array([50]), np.array([3.0]))}
    fig = plot_learning_curves({"real": {"cf": curves, "tb": {}}, "control": {}})
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 1
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "CF baseline (2 seeds)"
    with pytest.raises(ValueError, match="no panel"):
        plot_learning_curves({})
    rows = [("a", sa.Interval({0: 1.0, 1: 3.0})), ("b", sa.Interval({0: 2.0}))]
    ax = plot_intervals(rows)
    # a: interval line and mean bar; b: mean bar only; and the zero line
    assert len(ax.lines) == 4
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    fig = plot_visibility_curve([0.5, 1.0], {"gain": [sa.Interval({0: 1.0}),
                                                      sa.Interval({0: 2.0, 1: 4.0})]})
    assert fig.axes[0].get_xscale() == "log"
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.0, 3.4))
    two_seeds = sa.Interval({0: 1.0, 1: 2.0})
    drawn = plot_visibility_curve([0.5, 1.0], {"D": [two_seeds] * 2}, ax=right,
                                  ylabel="dependency part")
    # on the panel given: its line, two interval bars and the zero line; left untouched
    assert drawn is fig and len(right.lines) == 4 and not left.lines
    assert right.get_ylabel() == "dependency part"
    for figure in map(plt.figure, plt.get_fignums()):  # legible in the book's column
        assert displayed_text_px(figure) >= MIN_TEXT_PX
    plt.close("all")


def three_seeds() -> dict[tuple[str, str, int], float]:
    """Three seeds where D(MLAD - CF) = 3 (+-0.1) and TB equals cf-smooth (+-0.1)."""
    values = {}
    for s, noise in zip((0, 1, 2), (0.1, -0.1, 0.0)):
        values.update({("cf", "real", s): 10.0, ("mlad", "real", s): 15.0 + noise,
                       ("cf", "control", s): 10.0, ("mlad", "control", s): 12.0,
                       ("tb", "real", s): 14.0, ("tb", "control", s): 12.0 + noise,
                       ("cf-smooth", "real", s): 14.0 + noise})
    return values


def test_protocol_readings_follow_the_rules_fixed_in_advance():
    values = three_seeds()
    readings = dict(sa.protocol_readings(record(values)))
    # D(MLAD - CF) = 5 - 2 = 3 on every seed (+-0.1): above 0
    assert readings["D(MLAD - CF): does cross-class dependency help MLAD?"].startswith(
        "yes, interval above 0: +3.0 [")
    assert readings["[MLAD - CF] on the control: is MLAD's gain persistence?"
                    ].startswith("yes")
    # TB - cf-smooth: 0, +-0.1 on real labels: no more than smoothing
    assert readings["[TB - cf-smooth] on real labels: does TB do more than smoothing?"
                    ].startswith("TB's gain is no more than smoothing")
    # CB never ran, and no look-alike, sweep or attention run: not yet
    assert readings["D(CB - CF): does the co-occurrence branch use co-occurrence?"
                    ] == "not yet (0 paired seeds; an interval needs 2)"
    assert all(r.startswith("not yet") for q, r in readings.items()
               if "v =" in q or "look-alikes" in q or "CB attention" in q)
    # one seed only: not yet, whatever its value
    one = {k: v for k, v in values.items() if k[2] == 0}
    first = dict(sa.protocol_readings(record(one)))
    assert first["D(MLAD - CF): does cross-class dependency help MLAD?"].startswith(
        "not yet (1 paired seed;")
    # a model that hit the cap on more than 1 in 5 runs is not read
    capped = record(values)
    for key, run_ in capped["runs"].items():
        if "/mlad/" in key:
            run_["ended_by"] = "cap"
    assert dict(sa.protocol_readings(capped))[
        "D(MLAD - CF): does cross-class dependency help MLAD?"].startswith("not read")


def test_a_charades_record_gets_the_main_readings_on_its_own_stage():
    values = three_seeds()
    charades = record(values)
    charades["dataset"] = "charades"
    for run_ in charades["runs"].values():
        run_["stage"] = "charades"
    readings = dict(sa.protocol_readings(charades))
    # the main table's readings, the same values as on a MultiTHUMOS main stage
    main = dict(sa.protocol_readings(record(values)))
    key = "D(MLAD - CF): does cross-class dependency help MLAD?"
    assert readings[key] == main[key] and readings[key].startswith("yes")
    # no CB only in the Charades stage; no look-alike or sweep stage either; and no
    # attention reading, whose rows the stage does not record
    assert not any("D(CB - CF)" in q or "look-alikes" in q or "v =" in q
                   or "attention" in q for q in readings)
    assert any("attention" in q for q in main)
    # the cap rule counts the Charades stage's runs
    for key_, run_ in charades["runs"].items():
        if "/mlad/" in key_:
            run_["ended_by"] = "cap"
    assert dict(sa.protocol_readings(charades))[key].startswith("not read")


def test_no_dependency_reading_says_how_small():
    values = {}
    for s, x in zip((0, 1, 2, 3), (0.1, -0.1, 0.2, -0.2)):
        values.update({("cf", "real", s): 10.0, ("mlad", "real", s): 12.0 + x,
                       ("cf", "control", s): 10.0, ("mlad", "control", s): 12.0})
    reading = dict(sa.protocol_readings(record(values)))[
        "D(MLAD - CF): does cross-class dependency help MLAD?"]
    assert reading.startswith("no gain detected at 4 seeds (any such gain is under 0.5")


def test_class_differences_pair_the_classes_of_one_seed():
    key = sa.run_key
    runs = {key("m1", "real", 1.0, "mlad", 0): {"per_class_ap": [50.0, None, 10.0]},
            key("m1", "real", 1.0, "cf", 0): {"per_class_ap": [40.0, None, 30.0]},
            key("m1", "real", 1.0, "cf", 1): {"per_class_ap": [1.0, 2.0, 3.0]}}
    rec = {"protocol": {"seeds": [0, 1]}, "runs": runs}
    out = sa.class_differences(rec, "mlad", "cf")
    assert list(out) == [0]  # seed 1 has no MLAD run
    assert out[0][0] == 10.0 and np.isnan(out[0][1]) and out[0][2] == -20.0
    assert sa.class_differences(rec, "mlad", "cf", "control") == {}


def test_join_records_unites_runs_and_names_the_input_that_disagrees():
    base = {"protocol": {"seeds": [0, 1]}, "budget": "cpu", "dataset": "multithumos"}
    a = {**base, "runs": {"m1/real/v1/cf/seed0": {"frame_map": 10.0}},
         "dataset_info": {"m1/real/v1/seed0": {"videos": 3}}, "started": "2026-12-06"}
    b = {**base, "runs": {"m1/real/v1/cf/seed1": {"frame_map": 12.0},
                          "m1/real/v1/cf/seed0": {"frame_map": 10.0}},
         "dataset_info": {"m1/real/v1/seed1": {"videos": 3}}, "started": "2026-12-05"}
    joined = sa.join_records([a, b], ["a.json", "b.json"])
    assert sorted(joined["runs"]) == ["m1/real/v1/cf/seed0", "m1/real/v1/cf/seed1"]
    assert sorted(joined["dataset_info"]) == ["m1/real/v1/seed0", "m1/real/v1/seed1"]
    assert joined["started"] == "2026-12-05" and joined["budget"] == "cpu"
    assert sa.per_seed(joined, "cf") == {0: 10.0, 1: 12.0}
    moved = {**b, "runs": {"m1/real/v1/cf/seed0": {"frame_map": 10.5}}}
    with pytest.raises(ValueError, match=r"b\.json: run m1/real/v1/cf/seed0 differs"):
        sa.join_records([a, moved], ["a.json", "b.json"])
    with pytest.raises(ValueError, match=r"b\.json holds another budget than a\.json"):
        sa.join_records([a, {**b, "budget": "gpu"}], ["a.json", "b.json"])
    with pytest.raises(ValueError, match="no record"):
        sa.join_records([])
