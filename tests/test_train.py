"""mladlib.train: config, loss, training loop, checkpoints, resume, stops, evaluation."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mladlib import metrics
from mladlib.data import load_predictions
from mladlib.train import (
    PRESETS,
    GracefulStop,
    NonFiniteLossError,
    Evaluation,
    TrainConfig,
    evaluate,
    format_results,
    load_checkpoint,
    load_model,
    load_splits,
    make_config,
    masked_bce,
    mlad_loss,
    predict,
    train,
)
from mladlib.train import epoch as epoch_module


pytestmark = pytest.mark.usefixtures("mladlib_environment")  # tests/conftest.py


def tiny(**overrides) -> TrainConfig:
    """A run on the tiny embedded dataset that takes about a second: 12 batches per epoch."""
    settings = dict(synthetic_size="tiny", hidden_dim=16, num_layers=1, window=16, batch_size=4, epochs=2,
                    windows_per_epoch=48, num_threads=1)
    return make_config("synthetic", **{**settings, **overrides})


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- configuration -----------------------------------------------------------------------


def test_config_round_trips_through_json():
    config = tiny(taus=(0, 5, 20), features=None, initial_loss_weight=0.0)
    again = TrainConfig.from_dict(json.loads(config.to_json()))
    assert again == config
    assert again.taus == (0, 5, 20)


def test_presets_and_overrides():
    config = make_config("synthetic")
    for name, value in PRESETS["synthetic"].items():
        assert getattr(config, name) == value
    assert make_config("synthetic", epochs=3, model="cf").epochs == 3
    paper = make_config("multithumos", annotations="a.json", features=["rgb.h5", "flow.h5"])
    assert (paper.lr, paper.batch_size, paper.hidden_dim, paper.num_layers) == (1e-4, 32, 128, 5)
    assert paper.variable_length and paper.window is None  # T comes from the dataset spec
    assert paper.features == ["rgb.h5", "flow.h5"]


@pytest.mark.parametrize(
    "overrides, word",
    [
        (dict(lr=0), "lr"),
        (dict(model="transformer"), "model"),
        (dict(batch_size=0), "batch_size"),
        (dict(window=20, variable_length=True), "length_step"),
        (dict(val_fraction=1.0), "val_fraction"),
        (dict(initial_loss_weight=0, final_loss_weight=0), "loss weight"),
        (dict(amp="fp8"), "amp"),
        (dict(dropout=1.5), "dropout"),
    ],
)
def test_bad_settings_are_named(overrides, word):
    with pytest.raises(ValueError, match=word):
        tiny(**overrides)


def test_real_datasets_need_their_files():
    with pytest.raises(ValueError, match="annotations and features"):
        make_config("charades")
    with pytest.raises(ValueError, match="unknown training settings"):
        make_config("synthetic", learning_rate=1e-3)
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainConfig.from_dict({"lr": 1e-3, "momentum": 0.9})


# --- loss --------------------------------------------------------------------------------


def test_masked_bce_counts_only_valid_steps():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 5, 3), (torch.rand(2, 5, 3) < 0.3).float()
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    expected = F.binary_cross_entropy_with_logits(logits[mask], labels[mask])
    assert torch.allclose(masked_bce(logits, labels, mask), expected)
    garbage = logits.clone()
    garbage[1, 2:] = 1e4  # padded steps: anything there is ignored
    assert torch.allclose(masked_bce(garbage, labels, mask), expected)
    assert torch.allclose(masked_bce(logits, labels), F.binary_cross_entropy_with_logits(logits, labels))


def test_mlad_loss_weights_its_terms():
    torch.manual_seed(1)
    final, initial, labels = torch.randn(2, 4, 3), torch.randn(2, 4, 3), (torch.rand(2, 4, 3) < 0.5).float()
    parts = mlad_loss(final, initial, labels, None, initial_weight=0.25, final_weight=2.0)
    assert torch.allclose(parts.total, 0.25 * parts.initial + 2.0 * parts.final)
    without_initial = mlad_loss(final, None, labels)
    assert without_initial.initial is None and torch.equal(without_initial.total, without_initial.final)


# --- training ----------------------------------------------------------------------------


@pytest.mark.slow
def test_overfits_the_tiny_training_split():
    config = tiny(hidden_dim=32, window=32, lr=5e-3, epochs=40, dropout=0.0, val_fraction=0, variable_length=False)
    result = train(config)
    losses = [entry["loss"] for entry in result.history]
    assert losses[-1] < 0.15 * losses[0]
    train_split = load_splits(config, ("train",)).train
    fitted = evaluate(result.model, train_split, window=32, standard=False)
    assert fitted.frame_map > 0.95


def test_same_config_same_numbers():
    a, b = train(tiny()), train(tiny())
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert [h["val_frame_map"] for h in a.history] == [h["val_frame_map"] for h in b.history]
    assert json.dumps(a.test_metrics) == json.dumps(b.test_metrics)
    assert states_equal(a.model.state_dict(), b.model.state_dict())


def test_loader_workers_do_not_change_the_numbers():
    # windows are drawn in the main process from (seed, epoch); workers only read them
    alone, helped = train(tiny(epochs=1)), train(tiny(epochs=1, num_workers=2))
    assert [h["loss"] for h in alone.history] == [h["loss"] for h in helped.history]
    assert states_equal(alone.model.state_dict(), helped.model.state_dict())


def test_bf16_autocast_trains_in_float32_weights():
    result = train(tiny(epochs=1, amp="bf16"))
    reference = train(tiny(epochs=1))
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
    assert result.history[0]["loss"] == pytest.approx(reference.history[0]["loss"], rel=1e-2)
    assert math.isfinite(result.test_metrics["frame_map"])


def test_run_folder_holds_everything(tmp_path):
    run = tmp_path / "run"
    result = train(tiny(run_dir=str(run)))
    assert result.completed and result.run_dir == run
    for name in ("config.json", "last.pt", "best.pt", "history.json", "train.log", "results.json",
                 "test_predictions.h5"):
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"loss", "loss_initial", "loss_final", "val_frame_map", "windows_per_s", "elapsed_s"} <= set(history[0])
    assert history == json.loads(json.dumps(result.history))
    results = json.loads((run / "results.json").read_text())
    assert results["test"]["frame_map"] == result.test_metrics["frame_map"]
    assert results["best_epoch"] == result.best_epoch
    model, config = load_model(run / "best.pt")
    assert states_equal(model.state_dict(), result.model.state_dict())
    assert config.run_dir == str(run) and config.hidden_dim == 16
    # the stored predictions are those of the best model on the test split
    test = load_splits(config, ("test",)).test
    stored = load_predictions(run / "test_predictions.h5")
    assert list(stored) == test.video_ids
    assert all(np.allclose(stored[v], s) for v, s in predict(model, test, window=16).items())
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny(run_dir=str(run)))


def test_without_validation_the_last_epoch_is_kept(tmp_path):
    result = train(tiny(val_fraction=0, run_dir=str(tmp_path / "run")))
    assert result.best_epoch == 2 and result.best_val_frame_map is None
    assert all(h["val_frame_map"] is None for h in result.history)
    last = load_checkpoint(tmp_path / "run" / "last.pt", kind="training")
    assert states_equal(last["model"], result.model.state_dict())


def test_best_checkpoint_follows_validation(tmp_path):
    result = train(tiny(epochs=3, run_dir=str(tmp_path / "run")))
    val = [h["val_frame_map"] for h in result.history]
    assert result.best_epoch == 1 + int(np.argmax(val)) and result.best_val_frame_map == max(val)
    best = load_checkpoint(tmp_path / "run" / "best.pt", kind="best")
    assert best["epoch"] == result.best_epoch and best["val_metrics"]["frame_map"] == max(val)


@pytest.mark.parametrize("accumulation", [1, 2])
def test_interrupted_and_resumed_run_ends_bit_identical(tmp_path, accumulation):
    config = tiny(epochs=3, grad_accumulation=accumulation, dropout=0.2)
    whole = train(config.replace(run_dir=str(tmp_path / "whole")))
    stop_at = 7 if accumulation == 1 else 4  # both in the middle of an epoch
    part = train(config.replace(run_dir=str(tmp_path / "parts"), stop_after_steps=stop_at))
    assert part.stopped == "stop_after_steps" and part.steps == stop_at and part.test_metrics is None
    saved = load_checkpoint(tmp_path / "parts" / "last.pt", kind="training")
    assert saved["step"] == stop_at and saved["batch"] > 0  # mid-epoch
    assert saved["config"].stop_after_steps is None  # the stop was for that session only
    resumed = train(resume=tmp_path / "parts" / "last.pt")
    assert resumed.completed and resumed.steps == whole.steps
    a = load_checkpoint(tmp_path / "whole" / "last.pt")
    b = load_checkpoint(tmp_path / "parts" / "last.pt")
    assert states_equal(a["model"], b["model"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert states_equal(sa, sb)
    assert [h["loss"] for h in whole.history] == [h["loss"] for h in resumed.history]
    assert [h["val_frame_map"] for h in whole.history] == [h["val_frame_map"] for h in resumed.history]
    assert states_equal(whole.model.state_dict(), resumed.model.state_dict())
    assert json.dumps(whole.test_metrics) == json.dumps(resumed.test_metrics)


def test_resume_refuses_changed_settings_and_best_checkpoints(tmp_path):
    config = tiny(run_dir=str(tmp_path / "run"), stop_after_steps=3)
    train(config)
    last = tmp_path / "run" / "last.pt"
    with pytest.raises(ValueError, match="lr"):
        train(load_checkpoint(last)["config"].replace(lr=0.5), resume=last)
    train(tiny(run_dir=str(tmp_path / "other"), epochs=1))
    with pytest.raises(ValueError, match="last.pt"):
        train(resume=tmp_path / "other" / "best.pt")
    # epochs may change: the run goes on to the new end
    result = train(resume=last, epochs=3)
    assert result.completed and len(result.history) == 3


def test_signal_stops_after_the_step_with_a_checkpoint(tmp_path, monkeypatch):
    real_loss, calls = epoch_module.mlad_loss, []

    def loss_then_signal(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of step 5
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(epoch_module, "mlad_loss", loss_then_signal)
    previous = signal.getsignal(signal.SIGTERM)
    result = train(tiny(epochs=5, run_dir=str(tmp_path / "run")))
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
    assert result.stopped == "SIGTERM" and result.steps == 5
    saved = load_checkpoint(tmp_path / "run" / "last.pt", kind="training")
    assert saved["step"] == 5 and saved["epoch"] == 0 and saved["batch"] == 5
    assert states_equal(saved["model"], result.model.state_dict())


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_loss, calls = epoch_module.mlad_loss, []

    def loss_going_nan(*args, **kwargs):
        calls.append(1)
        parts = real_loss(*args, **kwargs)
        if len(calls) == 15:  # in epoch 2 (12 batches per epoch)
            return parts._replace(total=parts.total * float("nan"))
        return parts

    run = tmp_path / "run"
    monkeypatch.setattr(epoch_module, "mlad_loss", loss_going_nan)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 15 \(batch 3 of 12\).*last\.pt \(epoch 1, step 12\)"):
        train(tiny(epochs=3, run_dir=str(run)))
    saved = load_checkpoint(run / "last.pt", kind="training")
    assert (saved["epoch"], saved["step"], saved["batch"]) == (1, 12, 0)
    assert all(torch.isfinite(t).all() for t in saved["model"].values())
    assert json.loads((run / "history.json").read_text())[-1]["epoch"] == 1
    # and the run can go on from there
    monkeypatch.setattr(epoch_module, "mlad_loss", real_loss)
    assert train(resume=run / "last.pt").completed


def test_graceful_stop_context():
    previous = signal.getsignal(signal.SIGINT)
    with GracefulStop(announce=False) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second one aborts
    assert signal.getsignal(signal.SIGINT) is previous


# --- checkpoints -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, cache_dir):
    os.environ["MLADLIB_CACHE"] = str(cache_dir)
    run = tmp_path_factory.mktemp("finished") / "run"
    torch.set_num_threads(1)
    train(tiny(epochs=1, run_dir=str(run)))
    return run


def test_corrupted_or_foreign_checkpoints_are_refused(tmp_path, finished_run):
    good = (finished_run / "last.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    flipped = tmp_path / "flipped.pt"
    damaged = bytearray(good)
    for i in range(len(damaged) // 3, len(damaged) // 3 + 2000):
        damaged[i] ^= 0xFF
    flipped.write_bytes(bytes(damaged))
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    code = tmp_path / "code.pt"
    torch.save({"module": torch.nn.Linear(2, 2)}, code)  # needs unpickling code: refused
    official = tmp_path / "official.pt"
    torch.save({"epoch": 3, "state_dict": {"alpha": torch.zeros(5)}}, official)
    plain = tmp_path / "plain.pt"
    torch.save([1, 2, 3], plain)
    for path, word in ((truncated, "corrupted"), (flipped, "corrupted"), (text, "corrupted"), (code, "refusing"),
                       (official, "--official"), (plain, "not a mladlib checkpoint")):
        with pytest.raises(ValueError, match=word) as error:
            load_checkpoint(path)
        assert path.name in str(error.value)
        with pytest.raises(ValueError):
            load_model(path)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    assert load_checkpoint(finished_run / "last.pt", kind="training")["epoch"] == 1


def test_checkpoints_are_written_atomically(tmp_path, finished_run, monkeypatch):
    from mladlib.train import save_checkpoint

    target = tmp_path / "ckpt.pt"
    target.write_bytes((finished_run / "best.pt").read_bytes())
    before = target.read_bytes()

    def failing_save(obj, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, "best", tiny(), {}, epoch=1)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]  # no temporary left


# --- evaluation --------------------------------------------------------------------------


def test_evaluate_reports_every_metric_of_the_predictions(finished_run):
    model, config = load_model(finished_run / "best.pt")
    test = load_splits(config, ("test",)).test
    result = evaluate(model, test, window=16, stride=4, taus=(0, 5, 20), threshold=0.4)
    scores = predict(model, test, window=16, stride=4)
    assert list(result.predictions) == test.video_ids
    for v in test.video_ids:
        np.testing.assert_array_equal(result.predictions[v], scores[v])
    s, y = list(scores.values()), [test.labels(i) for i in range(len(test))]
    assert result.videos == len(test) and result.frames == int(test.frame_counts.sum())
    assert result.frame_map == pytest.approx(metrics.frame_map(s, y), abs=1e-12)
    table2 = metrics.standard_metrics(s, y, 0.4).as_dict()
    assert result.standard == pytest.approx(table2, abs=1e-12)
    for tau, r in metrics.action_conditional_sweep(s, y, (0, 5, 20), 0.4).items():
        row = {**r.as_dict(), "pairs": r.n_pairs}
        assert result.action_conditional[tau] == pytest.approx(row, abs=1e-12)
    per_class = metrics.frame_map(s, y, return_per_class=True)[1]
    assert np.allclose(result.per_class_ap, per_class, equal_nan=True)
    record = json.loads(json.dumps(result.to_dict()))  # plain Python values
    assert "predictions" not in record and record["frame_map"] == result.frame_map
    back = Evaluation.from_dict(record)
    assert json.dumps(back.to_dict()) == json.dumps(result.to_dict())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.frame_map = 1.0
    table = format_results(result, "title")
    assert table == format_results(record, "title")
    assert table.splitlines()[0] == "title"
    assert f"{100 * result.frame_map:.2f}" in table
    ac20 = result.action_conditional[20]["mAP_AC"]
    assert "tau = 5" in table and f"{100 * ac20:.2f}" in table
    with pytest.raises(TypeError):
        evaluate(model, test, 16)  # options by keyword only


def test_evaluate_adds_the_charades_25_frame_map_on_charades(finished_run):
    model, config = load_model(finished_run / "best.pt")
    test = load_splits(config, ("test",)).test
    plain = evaluate(model, test, window=16, standard=False)
    assert plain.frame_map_charades25 is None
    assert "25/video" not in format_results(plain)
    assert "frame_map_charades25" not in plain.to_dict()
    test.spec = dataclasses.replace(test.spec, name="charades")
    result = evaluate(model, test, window=16, standard=False)
    scores = predict(model, test, window=16)
    expected = metrics.frame_map(list(scores.values()), [test.labels(i) for i in range(len(test))],
                                 sample="charades25", video_ids=test.video_ids)
    assert result.frame_map_charades25 == pytest.approx(expected, abs=1e-12)
    assert result.frame_map == plain.frame_map
    table = format_results(result)
    assert "f-mAP (25/video)" in table and f"{100 * expected:.2f}" in table


def test_progress_switches(monkeypatch):
    from mladlib.train import progress_enabled

    monkeypatch.setenv("MLADLIB_PROGRESS", "1")
    assert progress_enabled(True) and not progress_enabled(False)
    monkeypatch.setenv("MLADLIB_PROGRESS", "0")
    assert not progress_enabled(True)


def test_progress_bar_run_prints_to_stderr(monkeypatch, capsys):
    monkeypatch.setenv("MLADLIB_PROGRESS", "1")
    result = train(tiny(epochs=1), progress=True, log=print)
    out, err = capsys.readouterr()
    assert "epoch   1/1" in out and "val f-mAP" in out
    assert "epoch 1/1" in err  # tqdm's bar
    assert result.completed and math.isfinite(result.test_metrics["frame_map"])


def test_results_are_plain_python():
    result = train(tiny(epochs=1))
    pickle.dumps(result.history)
    json.dumps(result.test_metrics)
    assert "f-mAP" in result.table() and "tau = 20" in result.table()


# --- no hidden side effects (issue 15) -----------------------------------------------------


def _global_settings() -> dict:
    from mladlib.utils import capture_global_state

    state = capture_global_state()
    for key in ("torch_rng", "cuda_rng"):
        if key in state:
            state[key] = [s.clone() for s in state[key]] if isinstance(state[key], list) else state[key].clone()
    return state


def _same_settings(a: dict, b: dict) -> bool:
    plain = ("deterministic", "warn_only", "fill_uninitialized_memory", "num_threads", "cublas_workspace",
             "python_rng")
    return (all(a[k] == b[k] for k in plain) and torch.equal(a["torch_rng"], b["torch_rng"])
            and all(np.array_equal(x, y) for x, y in zip(a["numpy_rng"], b["numpy_rng"])))


def test_trainer_leaves_the_process_as_it_found_it(monkeypatch):
    import mladlib.utils as utils
    from mladlib.train import Trainer

    tuned = []
    monkeypatch.setattr(utils, "keep_freed_memory", lambda: tuned.append(1) or True)
    torch.use_deterministic_algorithms(False)
    torch.manual_seed(123)
    before = _global_settings()
    trainer = Trainer(tiny(epochs=1, num_threads=2, seed=7))
    assert _same_settings(_global_settings(), before)  # construction changes nothing
    result = trainer.fit()
    assert result.completed
    assert _same_settings(_global_settings(), before)  # nor does training
    assert not torch.are_deterministic_algorithms_enabled()
    assert tuned == []  # malloc is tuned only when asked


def test_trainer_restores_the_settings_when_fit_fails(monkeypatch):
    from mladlib.train import Trainer

    before = _global_settings()
    trainer = Trainer(tiny(epochs=1, num_threads=2))

    def broken(*args, **kwargs):
        assert torch.are_deterministic_algorithms_enabled()  # the run's settings hold inside fit
        raise RuntimeError("broken epoch")

    monkeypatch.setattr(trainer, "_train_epoch", broken)
    with pytest.raises(RuntimeError, match="broken epoch"):
        trainer.fit()
    assert _same_settings(_global_settings(), before)


def test_trainer_with_the_caller_rng_elsewhere_trains_the_same():
    """The run's numbers depend on its seed only, not on the caller's random streams."""
    first = train(tiny(epochs=1))
    torch.manual_seed(999)
    np.random.seed(5)
    second = train(tiny(epochs=1))
    assert states_equal(first.model.state_dict(), second.model.state_dict())


def test_import_leaves_malloc_and_torch_settings_alone():
    import subprocess
    import sys

    code = ("import torch; d = torch.are_deterministic_algorithms_enabled(); n = torch.get_num_threads(); "
            "import mladlib, mladlib.utils as u; "
            "assert not u.freed_memory_kept(); assert torch.are_deterministic_algorithms_enabled() == d; "
            "assert torch.get_num_threads() == n; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


# --- model options from the config (issue 15) -----------------------------------------------


def test_every_model_option_is_a_setting():
    from mladlib.models import model_options
    from mladlib.train.checkpoint import build_from_config

    config = tiny(ff_dim=24, alpha=0.3, branches=("tb",), positional_encoding=False, attention_out_relu=True,
                  positional_scale=2.0, input_dropout=0.1, implementation="reference", feature_streams=[3, 5])
    assert set(config.model_options) <= model_options()
    model = build_from_config(config, 4, 8)
    layer = model.layers[0]
    assert layer.branches == ("tb",) and layer.tb.linear1.out_features == 24 and layer.tb.out_relu
    assert model.positional_encoding is None and model.input_dropout.p == 0.1
    assert model.implementation == "reference" and model.options.feature_streams == (3, 5)
    again = TrainConfig.from_dict(json.loads(config.to_json()))
    assert again == config and again.branches == ("tb",)
    # "auto": the fast path, measured faster on the CPU and on an H200
    assert build_from_config(tiny(), 4, 8, "cpu").implementation == "fast"
    assert build_from_config(tiny(), 4, 8, "cuda").implementation == "fast"
    assert build_from_config(tiny(implementation="reference"), 4, 8, "cpu").implementation == "reference"


def test_public_recipe_is_the_release_settings():
    config = make_config("multithumos", recipe="public", root="/data/mt")
    assert (config.dropout, config.input_dropout, config.attention_out_relu) == (0.2, 0.2, True)
    assert config.positional_scale == 1.0 and config.lr == 1e-3 and config.weight_decay == 1e-6
    assert make_config("multithumos", recipe="public", root="/data/mt", dropout=0.3).dropout == 0.3
    with pytest.raises(ValueError, match="recipe"):
        make_config("synthetic", recipe="private")
    with pytest.raises(ValueError, match="positional_scale"):
        tiny(positional_scale=-1.0)
    with pytest.raises(ValueError, match="implementation"):
        tiny(implementation="quick")


def test_each_variant_gets_only_the_options_it_takes():
    from mladlib.models import MODEL_VARIANTS
    from mladlib.train.checkpoint import build_from_config

    for name, variant in MODEL_VARIANTS.items():
        options = tiny(model=name).model_options
        assert set(options) <= variant.takes and not set(options) & set(variant.fixed), name
        build_from_config(tiny(model=name), 4, 8)  # the preset's num_layers=3 does not reach "cf"
    assert "num_layers" not in tiny(model="cf").model_options
    with pytest.raises(ValueError, match="'cb' does not take branches"):
        tiny(model="cb", branches=("cb", "tb")).model_options


def test_which_inputs_each_variant_receives():
    """The linear baseline is the paper's I3D classifier: the features alone, no positions.
    Every class-feature model adds sinusoidal positions unless told otherwise."""
    from mladlib.models import MODEL_VARIANTS
    from mladlib.train.checkpoint import build_from_config

    for name in MODEL_VARIANTS:
        model = build_from_config(tiny(model=name), 4, 8)
        has_positions = getattr(model, "positional_encoding", None) is not None
        assert has_positions == (name != "linear"), name
    forced = build_from_config(tiny(model="linear", positional_encoding=True), 4, 8)
    assert forced.positional_encoding is not None
    # a configuration written before the option existed reloads with the variant's default
    old = tiny(model="linear").to_dict()
    del old["positional_encoding"]
    assert build_from_config(TrainConfig.from_dict(old), 4, 8).positional_encoding is None


def test_patience_stops_a_run_that_stopped_improving(tmp_path):
    """The stopping rule: training ends after `patience` validations without a new best, and
    the record says whether the rule or the epoch cap ended it."""
    capped = train(tiny(epochs=3, patience=None), progress=False)
    assert capped.ended_by == "cap" and len(capped.history) == 3
    # steps of 1e-30 are below float32's resolution: the weights, and so the validation
    # f-mAP, never move from the first epoch's
    frozen = train(tiny(epochs=10, patience=2, lr=1e-30), progress=False, run_dir=tmp_path / "run")
    assert frozen.ended_by == "plateau" and frozen.best_epoch == 1
    assert [e["epoch"] for e in frozen.history] == [1, 2, 3]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["ended_by"] == "plateau"
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)


def test_cache_key_changes_only_when_what_a_run_computes_changes():
    from mladlib.train.cache import config_key

    mlad = make_config("synthetic")
    # settings added later, at the value that trains what was trained before they existed
    assert config_key(mlad) == config_key(mlad.replace(positional_encoding=True))
    assert config_key(mlad) != config_key(mlad.replace(patience=5))
    assert config_key(mlad) != config_key(mlad.replace(feature_streams=[4, 4]))
    assert config_key(mlad) != config_key(mlad.replace(positional_encoding=False))
    # the linear baseline without positions is another model than with them
    linear = make_config("synthetic", model="linear")
    assert config_key(linear) != config_key(linear.replace(positional_encoding=True))
    assert config_key(linear) == config_key(linear.replace(positional_encoding=False))
