"""Command line: ``python -m mladlib <command> [options]``.

Commands: ``synth`` (write the embedded dataset), ``train``, ``evaluate`` (a checkpoint
on a split), ``predict`` (scores of one feature file), ``smoke`` (every model once), ``fetch`` (the
public annotation files of MultiTHUMOS/Charades).
``python -m mladlib train`` alone trains MLAD on the embedded dataset and prints its
test results. Bad paths and options end with one ``error: ...`` line and exit status 2
(outputs are checked before the work; an output that is one of the inputs is refused,
and so is one that would replace a checkpoint or a run folder's file unless
``--overwrite``);
a diverging run (NaN loss) exits with 1; a file that cannot be written (disk full) with 3;
a run stopped by SIGINT/SIGTERM writes a checkpoint and exits with 130/143.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

from .models import MODEL_LABELS, MODEL_VARIANTS, build_model, count_parameters
from .utils import atomic_path, seed_everything
from .validate import (WriteError, check_finite, check_outputs, check_real_dtype, input_file, open_fraction,
                       positive_int, seed_value)

EXIT_USAGE, EXIT_DIVERGED, EXIT_WRITE = 2, 1, 3
DESCRIPTION = """MLAD (CVPR 2021): train, evaluate and apply multi-label temporal action localization models.

  python -m mladlib train                      MLAD on the embedded dataset, then its test results
  python -m mladlib train --dataset multithumos --annotations multithumos.json --features rgb.h5 flow.h5
  python -m mladlib evaluate --checkpoint runs/synthetic-mlad/best.pt --out scores.h5
  torchrun --nproc_per_node=4 -m mladlib train ...   one process per GPU (DistributedDataParallel)

Exit status: 0 done; 1 the loss became NaN or infinite; 2 a bad option, path or file;
3 a file could not be written (disk full, file size limit): a run keeps its last good checkpoint;
130/143 stopped by SIGINT/SIGTERM after writing a checkpoint (continue with train --resume)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes end in one line, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _say(line: str = "") -> None:
    if _is_main_process():
        print(line, flush=True)


# --- options that map onto TrainConfig ----------------------------------------------------


def _config_defaults(name: str) -> str:
    """``name``'s default as help text: one value, or one per preset when they differ."""
    from .train.config import PRESETS, TrainConfig

    base = {f.name: f.default for f in dataclasses.fields(TrainConfig)}[name]
    unset = {"window": "the dataset's T"}.get(name, "unset")
    values = {preset: settings.get(name, base) for preset, settings in PRESETS.items()}
    shown = {preset: unset if v is None else " ".join(map(str, v)) if isinstance(v, tuple) else v
             for preset, v in values.items()}
    if len(set(map(repr, shown.values()))) == 1:
        return f"default: {next(iter(shown.values()))}"
    return "default: " + ", ".join(f"{v} ({p})" for p, v in shown.items())


def _add_option(group, flag: str, field: str, help: str, show_default: bool = True, **kwargs: Any) -> None:
    """An option for TrainConfig field ``field``; absent from the namespace unless given."""
    default = _config_defaults(field)
    if show_default and "default:" not in help and default != "default: unset":
        help = f"{help} ({default})"
    if "choices" not in kwargs and "action" not in kwargs:
        kwargs.setdefault("metavar", {int: "N", float: "X"}.get(kwargs.get("type"), "VALUE"))
    group.add_argument(flag, dest=field, default=argparse.SUPPRESS, help=help, **kwargs)


def _add_data_options(parser: argparse.ArgumentParser, for_training: bool) -> None:
    from .synth import SIZES
    from .train.config import DATASETS

    g = parser.add_argument_group(
        "data", "the embedded dataset, or real features: a dataset folder (--root) or --annotations with --features"
        + ("" if for_training else "; by default those of the checkpoint's run")
    )
    _add = functools.partial(_add_option, show_default=for_training)
    _add(g, "--dataset", "dataset", "dataset preset and class conventions", choices=DATASETS)
    _add(g, "--size", "synthetic_size", "size of the embedded dataset", choices=sorted(SIZES))
    _add(g, "--synth-seed", "synthetic_seed", "seed of the embedded dataset", type=seed_value,
         metavar="N")
    _add(g, "--root", "root", "dataset folder: annotations.json, features.h5 or features/, "
         "train_list.txt, test_list.txt, classes.txt", metavar="DIR")
    _add(g, "--annotations", "annotations", "annotation JSON (MultiTHUMOS/Charades layout)", metavar="PATH")
    _add(g, "--features", "features", "feature HDF5 file(s) or .npy folder(s); several are joined along D "
         "(RGB then flow)", nargs="+", metavar="PATH")
    _add(g, "--test-features", "test_features", "features of the test split when stored apart "
         "(default: --features)", nargs="+", metavar="PATH")
    _add(g, "--classes", "classes", "classes.txt (class names, for tables)", metavar="PATH")
    _add(g, "--train-list", "train_list", "training video ids, one a line (default: the annotations' subset)",
         metavar="PATH")
    _add(g, "--test-list", "test_list", "test video ids, one a line (default: the annotations' subset)",
         metavar="PATH")
    _add(g, "--in-memory", "in_memory", "read all features into memory first (default: yes for the embedded "
         "dataset only)", action=argparse.BooleanOptionalAction)
    if for_training:
        _add(g, "--val-fraction", "val_fraction", "part of the training videos held out to pick the best epoch "
             "(0: keep the last epoch)", type=float)


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    _add = _add_option
    _add_data_options(parser, for_training=True)
    g = parser.add_argument_group("model")
    _add(g, "--model", "model", "; ".join(f"{k}: {v}" for k, v in MODEL_LABELS.items()), choices=sorted(MODEL_VARIANTS))
    _add(g, "--hidden-dim", "hidden_dim", "H, size of a class feature", type=int)
    _add(g, "--num-layers", "num_layers", "L, number of MLAD layers", type=int)
    _add(g, "--num-heads", "num_heads", "attention heads", type=int)
    _add(g, "--dropout", "dropout", "dropout", type=float)
    _add(g, "--attention-dropout", "attention_dropout", "dropout on attention weights (default: --dropout)", type=float)
    _add(g, "--input-dropout", "input_dropout", "dropout on the features after the positional encoding", type=float)
    _add(g, "--ff-dim", "ff_dim", "width of the feed-forward block (default: H)", type=int)
    _add(g, "--alpha", "alpha", "eq. 6's a: 'learned' or a fixed number in [0, 1]", type=_learned_or_float)
    _add(g, "--branches", "branches", "the MLAD branches to keep (default: the model's)", nargs="+",
         choices=("cb", "tb"))
    _add(g, "--positional-encoding", "positional_encoding", "add sinusoidal positions to the features "
         "(default: off for linear, as in the paper; on for the others)", action=argparse.BooleanOptionalAction)
    _add(g, "--positional-scale", "positional_scale", "amplitude of the positions: 'auto' (the features' "
         "running RMS) or a number (1: the public code)", type=_auto_or_float)
    _add(g, "--attention-out-relu", "attention_out_relu", "ReLU after the attention's output projection "
         "(the public code)", action=argparse.BooleanOptionalAction)
    _add(g, "--feature-streams", "feature_streams", "widths of the feature streams "
         "joined along D (e.g. 1024 1024 for RGB + flow): each gets its own running RMS",
         type=int, nargs="+")
    _add(g, "--implementation", "implementation", "reference: the textbook layer; fast: "
         "its speed path (same function); auto: fast", choices=("auto", "reference", "fast"))
    g.add_argument("--recipe", choices=("public",), default=None,
                   help="public: the public release's training settings (dropout 0.2 with input dropout, ReLU "
                        "after the output projection, positions at amplitude 1, Adam 1e-3, weight "
                        "decay 1e-6, batch 16 x 4 accumulated); options given beside it override it")
    g = parser.add_argument_group("training windows")
    _add(g, "--window", "window", "T, window length in feature steps", type=int)
    _add(g, "--variable-length", "variable_length", "draw each batch's length from {s, 2s, ..., T} "
         "(table 4)", action=argparse.BooleanOptionalAction)
    _add(g, "--length-step", "length_step", "s, the step of variable lengths", type=int)
    _add(g, "--windows-per-epoch", "windows_per_epoch", "windows per epoch (default: about one pass over "
         "the frames)", type=int)
    g = parser.add_argument_group("optimization")
    _add(g, "--epochs", "epochs", "epochs", type=int)
    _add(g, "--batch-size", "batch_size", "windows per batch and process", type=int)
    _add(g, "--lr", "lr", "Adam learning rate", type=float)
    _add(g, "--weight-decay", "weight_decay", "Adam weight decay", type=float)
    _add(g, "--scheduler", "scheduler", "learning-rate schedule over all steps", choices=("none", "cosine"))
    _add(g, "--grad-accumulation", "grad_accumulation", "batches per optimizer step", type=int)
    _add(g, "--grad-clip", "grad_clip", "clip the gradient norm to this value", type=float)
    _add(g, "--initial-loss-weight", "initial_loss_weight", "weight of the initial-logit loss (0: table S3's "
         "'without initial loss')", type=float)
    _add(g, "--final-loss-weight", "final_loss_weight", "weight of the final-logit loss", type=float)
    _add(g, "--prior-bias", "prior_bias", "start classifier biases at the classes' training log-odds "
         "(not in the paper; --no-prior-bias starts them at 0)", action=argparse.BooleanOptionalAction)
    g = parser.add_argument_group("evaluation")
    _add(g, "--eval-every", "eval_every", "validate every N epochs (and after the last)", type=int)
    _add(g, "--patience", "patience", "stop after N validations in a row without a new best (--epochs stays "
         "the cap; default: unset, train every epoch)", type=int)
    _add(g, "--eval-stride", "eval_stride", "stride of the sliding windows (default: window // 2)", type=int)
    _add(g, "--eval-batch-size", "eval_batch_size", "windows per inference batch", type=int)
    _add(g, "--threshold", "threshold", "score threshold of the thresholded metrics", type=float)
    _add(g, "--taus", "taus", "taus of the action-conditional metrics", type=int, nargs="+")
    g = parser.add_argument_group("run")
    _add(g, "--seed", "seed", "seed of everything random", type=seed_value, metavar="N")
    _add(g, "--device", "device", "auto (CUDA if present), cpu, cuda, cuda:N")
    _add(g, "--amp", "amp", "autocast: auto (bf16 on CUDA), bf16, off", choices=("auto", "bf16", "off"))
    _add(g, "--compile", "compile", "torch.compile the model", action=argparse.BooleanOptionalAction)
    _add(g, "--num-workers", "num_workers", "DataLoader worker processes", type=int)
    _add(g, "--threads", "num_threads", "torch CPU threads (default: torch's choice)", type=int)
    g.add_argument("--run-dir", dest="run_dir", default=argparse.SUPPRESS, metavar="DIR",
                   help="where checkpoints, history and results go (default: runs/<dataset>-<model>, "
                        "numbered when taken)")
    g.add_argument("--resume", metavar="CHECKPOINT", help="continue the run of this last.pt (its settings; only "
                   "--epochs, --device, --num-workers, --threads, --stop-after-steps, --eval-batch-size may change)")
    _add(g, "--stop-after-steps", "stop_after_steps", "stop (with a checkpoint) after this many optimizer steps "
         "in all", type=int)
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: when stderr is a terminal; MLADLIB_PROGRESS=0 turns them off)")
    g.add_argument("--keep-freed-memory", action="store_true",
                   help="tune glibc malloc to keep freed buffers mapped (about 10%% faster CPU steps at the "
                        "MultiTHUMOS size; the process keeps its peak memory; mladlib.utils.keep_freed_memory)")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _unit_interval(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _seconds(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def _positive_rate(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected features per second > 0, got {text!r}")
    return value


def _learned_or_float(text: str) -> str | float:
    if text == "learned":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'learned' or a number, got {text!r}") from None


def _auto_or_float(text: str) -> str | float:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, got {text!r}") from None


_PATH_FIELDS = ("root", "annotations", "classes", "train_list", "test_list", "run_dir")
_DATA_FIELDS = ("dataset", "synthetic_size", "synthetic_seed", "root", "annotations", "features", "test_features",
                "classes", "train_list", "test_list", "in_memory")


def _config_options(args: argparse.Namespace, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The TrainConfig fields given on the command line (those in ``only``), paths made absolute."""
    from .train.config import TrainConfig

    fields = set(only) if only is not None else {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in fields}
    for name in _PATH_FIELDS:
        if given.get(name) not in (None, "auto"):
            given[name] = str(Path(given[name]).resolve())
    for name in ("features", "test_features"):
        if given.get(name):
            given[name] = [str(Path(p).resolve()) for p in given[name]]
    return given


def _flag(field: str) -> str:
    return {"synthetic_size": "--size", "synthetic_seed": "--synth-seed", "num_threads": "--threads"}.get(
        field, "--" + field.replace("_", "-"))


# --- commands ----------------------------------------------------------------------------


def cmd_smoke(args: argparse.Namespace) -> int:
    """Build every model variant and run one forward/backward pass on random features."""
    seed_everything(args.seed)
    x = torch.randn(2, 32, 64)
    for name in MODEL_VARIANTS:
        sizes = {"hidden_dim": 16, "num_layers": 2}  # where the variant takes them
        takes = MODEL_VARIANTS[name].takes
        model = build_model(name, 10, 64, **{k: v for k, v in sizes.items() if k in takes})
        out = model(x)
        out.logits.mean().backward()
        print(f"{name:<18} params {count_parameters(model):>8,d}  logits {tuple(out.logits.shape)}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from . import synth

    if args.out is None:
        root = synth.dataset_root(args.size, args.seed)
    else:
        root = Path(args.out)
        config_file = root / "config.json"
        if root.exists() and any(root.iterdir()):
            if not config_file.is_file() or not (root / "annotations.json").is_file():
                raise ValueError(f"{root} exists and is not an embedded dataset; choose a new folder")
            saved = json.loads(config_file.read_text())
            wanted = {**dataclasses.asdict(synth.SIZES[args.size]), "seed": args.seed}
            if any(saved.get(k) != (list(v) if isinstance(v, tuple) else v) for k, v in wanted.items()):
                raise ValueError(f"{root} holds another embedded dataset (size or seed differ); choose a new folder")
        else:
            cfg = dataclasses.replace(synth.SIZES[args.size], seed=args.seed)
            synth.write_layout(synth.generate(cfg), root, cfg)
    cfg = synth.SIZES[args.size]
    print(f"embedded dataset ({args.size}, seed {args.seed}): {cfg.num_train} train + {cfg.num_test} test videos, "
          f"{cfg.feature_dim}-d features, {len(synth.CLASS_NAMES)} classes")
    print(root)
    return 0


def cmd_semireal(args: argparse.Namespace) -> int:
    from . import semireal

    try:
        obs = semireal.ObservationModel(visibility=args.visibility, spread=args.spread,
                                        rho=args.rho, feature_dim=args.feature_dim,
                                        seed=args.seed)
    except ValueError as error:  # "visibility must be ...": name the option too
        flag = "--" + str(error).split()[0].replace("_", "-")
        raise ValueError(f"{flag}: {error}") from None
    root = semireal.build(args.dataset, args.annotations, args.out, obs, args.max_videos)
    meta = json.loads((root / "semireal.json").read_text())
    print(f"semi-real {args.dataset}: {meta['videos']['training']} train + {meta['videos']['testing']} test "
          f"videos, real frame labels, simulated {args.feature_dim}-d features (visibility {args.visibility})")
    print(root)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import EXIT_CODES, RESUMABLE, load_checkpoint, make_config, train

    given = _config_options(args)
    if args.keep_freed_memory:
        from .utils import keep_freed_memory

        keep_freed_memory()
    if args.resume is not None:
        if args.recipe is not None:
            raise ValueError("--recipe cannot change when resuming; the checkpoint's settings apply")
        fixed = sorted(set(given) - set(RESUMABLE))
        if fixed:
            raise ValueError(f"{', '.join(_flag(f) for f in fixed)} cannot change when resuming; "
                             f"the checkpoint's settings apply")
        config = load_checkpoint(args.resume, kind="training")["config"].replace(**given)
        result = train(config, resume=args.resume, progress=args.progress, log=_say)
    else:
        dataset = given.pop("dataset", "synthetic")
        given.setdefault("run_dir", "auto")
        config = make_config(dataset, recipe=args.recipe, **given)
        if "positional_scale" in given:
            _check_positions_used(config)
        result = train(config, progress=args.progress, log=_say)
    if result.stopped in EXIT_CODES:
        return EXIT_CODES[result.stopped]
    if result.completed:
        _say()
        _say(result.table())
        if result.run_dir is not None:
            _say(f"\nrun folder: {result.run_dir} (best.pt, history.json, results.json, test_predictions.h5)")
    return 0


def _check_positions_used(config) -> None:
    """``ValueError`` when ``--positional-scale`` is given to a model that adds no
    positions (``--no-positional-encoding``, or the linear baseline's default)."""
    from .train.checkpoint import build_from_config

    probe = build_from_config(config, num_classes=2, feature_dim=4)  # tiny: just to ask
    if getattr(probe, "positional_encoding", None) is None:
        raise ValueError(f"--positional-scale {config.positional_scale} has no effect: "
                         f"this {config.model} model adds no positional encoding (add "
                         "--positional-encoding, or drop --positional-scale)")


def _load_for_inference(args: argparse.Namespace):
    """``(model, config or None)`` of ``--checkpoint`` (``--official``: the public release's layout)."""
    from .models import load_official_checkpoint
    from .train import load_model

    input_file(args.checkpoint, "checkpoint")
    if args.official:
        return load_official_checkpoint(args.checkpoint, num_heads=args.num_heads), None
    return load_model(args.checkpoint)


def _window_limit(model: torch.nn.Module, window: int) -> int:
    """``window``, shortened to the model's stored positional table if it has one (the
    public release stores a table as long as its training window)."""
    table = getattr(getattr(model, "positional_encoding", None), "max_len", None)
    return min(window, table) if table else window


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import save_predictions
    from .train import evaluate, format_results, load_splits, make_config, setup_distributed
    from .train.inference import NonFiniteScoresError, autocast_dtype

    model, config = _load_for_inference(args)
    given = _config_options(args, only=_DATA_FIELDS)
    if config is None:  # a public-release checkpoint carries no settings: the data come from the options
        dataset = given.pop("dataset", None)
        if dataset is None:
            raise ValueError("--official needs --dataset and the data options (the checkpoint names no data)")
        config = make_config(dataset, **given)
    else:
        config = config.replace(**given)
    _check_evaluate_outputs(args, config)
    context, device = setup_distributed(args.device)
    try:
        dataset = load_splits(config, (args.split,))[args.split]
        window = args.window or _window_limit(model, config.window or dataset.spec.default_window)
        threshold = args.threshold if args.threshold is not None else config.threshold
        try:
            result = evaluate(
                model.to(device), dataset, window=window, stride=args.stride,
                taus=tuple(args.taus or config.taus), threshold=threshold,
                device=device, autocast=autocast_dtype(args.amp, device),
                batch_size=args.batch_size, context=context)
        except NonFiniteScoresError as error:
            raise ValueError(f"checkpoint {args.checkpoint}: {error}") from None
    finally:
        context.shutdown()
    if not context.is_main:
        return 0
    name = "public MLAD release" if args.official else MODEL_LABELS.get(config.model, config.model)
    title = f"{name} on {config.dataset}, {args.split} split (window {window})"
    print(format_results(result, title))
    if args.out is not None:
        save_predictions(args.out, result.predictions)
        print(f"\nper-video scores: {args.out}")
    if args.json is not None:
        with atomic_path(args.json, suffix=".json") as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=1))
        print(f"metrics: {args.json}")
    return 0


def _check_evaluate_outputs(args: argparse.Namespace, config) -> None:
    """``--out``/``--json`` writable and none of the run's inputs, before any evaluation."""
    from .train.datasets import input_paths

    outputs = {"--out": args.out, "--json": args.json}
    check_outputs(outputs, [args.checkpoint, *input_paths(config)])
    if not args.overwrite:
        _refuse_run_files(outputs)


def _refuse_run_files(outputs: dict[str, str | None]) -> None:
    """``ValueError`` naming the option when an output would replace a checkpoint (any
    existing PyTorch archive) or one of a run folder's files (scores over ``best.pt``:
    the weights exist nowhere else; a ``results.json`` that ``load_run`` then cannot
    read). ``--overwrite`` skips this check."""
    import zipfile

    from .train.run_folder import RUN_FILES

    run_markers = (RUN_FILES["config"], RUN_FILES["last"], RUN_FILES["best"])
    for flag, given in outputs.items():
        if given is None:
            continue
        path = Path(given).resolve()  # a link to a run file counts as that file
        if path.is_file() and zipfile.is_zipfile(path):
            what = "a checkpoint (a zip archive)"
        elif path.name in RUN_FILES.values() and any(
                (path.parent / marker).exists() for marker in run_markers):
            what = f"the {path.name} of the run folder {path.parent}"
        else:
            continue
        raise ValueError(f"{flag} {given} is {what}; it would be overwritten. Choose "
                         "another file, or pass --overwrite")


def _read_feature_file(path: Path, video: str | None) -> tuple[str, np.ndarray]:
    """``(video id, features (T, D) float32)`` of a ``.npy`` array or one video of an HDF5 store."""
    import h5py

    from .data import HDF5FeatureStore

    input_file(path, "feature file")
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read feature file {path}: {error}") from None
        check_real_dtype(array.dtype, f"feature file {path}")
        if array.ndim == 4 and array.shape[1:3] == (1, 1):
            array = array.reshape(array.shape[0], array.shape[3])
        if array.ndim != 2 or len(array) == 0:
            raise ValueError(f"feature file {path}: expected shape (T, D) or (T, 1, 1, D), got {array.shape}")
        array = np.ascontiguousarray(array, dtype=np.float32)
        check_finite(array, f"feature file {path}")
        return video or path.stem, array
    if not h5py.is_hdf5(path):
        raise ValueError(f"feature file {path} is neither a .npy array nor an HDF5 file")
    store = HDF5FeatureStore(path)
    ids = store.video_ids()
    if video is None:
        if len(ids) != 1:
            raise ValueError(f"{path} holds {len(ids)} videos; name one with --video (e.g. {ids[0]!r})")
        video = ids[0]
    try:
        features = store.read(video)
    finally:
        store.close()
    check_finite(features, f"video {video!r} in feature file {path}")
    return video, features


def _class_names(config, num_classes: int) -> list[str]:
    names = None
    if config is not None:
        from . import synth
        from .train import dataset_spec

        try:
            if config.dataset == "synthetic" and config.classes is None:
                names = synth.synthetic_spec(config.synthetic_size).class_names
            else:
                names = dataset_spec(config).class_names
        except (ValueError, OSError):
            names = None
    return list(names) if names and len(names) == num_classes else [f"class {c}" for c in range(num_classes)]


def cmd_predict(args: argparse.Namespace) -> int:
    from .train import predict
    from .train.distributed import resolve_device
    from .train.inference import NonFiniteScoresError, autocast_dtype

    device = resolve_device(args.device)  # the check train and evaluate make
    if args.out is not None and Path(args.out).suffix != ".npy":
        raise ValueError(f"--out must name a .npy file, got {args.out}")
    if args.segments is not None and Path(args.segments).suffix != ".csv":
        raise ValueError(f"--segments must name a .csv file, got {args.segments}")
    check_outputs({"--out": args.out, "--segments": args.segments},
                  [args.checkpoint, args.features])
    model, config = _load_for_inference(args)
    video, features = _read_feature_file(Path(args.features), args.video)
    window = args.window or _window_limit(model, _run_window(config))
    try:
        scores = predict(model.to(device), features, window=window, stride=args.stride,
                         batch_size=args.batch_size, device=device,
                         autocast=autocast_dtype(args.amp, device))  # (T, C)
    except NonFiniteScoresError as error:  # nothing is printed or written
        raise ValueError(f"checkpoint {args.checkpoint} gives NaN or infinite scores "
                         f"on video {video!r} of {args.features} ({error.count:,} "
                         f"of {error.total:,} values)") from None
    T, C = scores.shape
    names = _class_names(config, C)
    print(f"{video}: {T} steps, {C} classes (window {window})")
    peak = scores.max(axis=0)
    order = np.argsort(-peak, kind="stable")[: args.top]
    print(f"{'class':<28}{'peak':>7}{'at step':>9}{'steps >= 0.5':>14}")
    for c in order:
        at, above = int(scores[:, c].argmax()), int((scores[:, c] >= 0.5).sum())
        print(f"{names[c][:27]:<28}{peak[c]:>7.3f}{at:>9}{above:>14}")
    if args.out is not None:
        out = Path(args.out)
        with atomic_path(out, suffix=".npy") as tmp:
            np.save(tmp, scores)
        print(f"scores (T, C) float32: {out}")
    if args.segments is not None:
        _write_predicted_segments(args, config, scores, names, video)
    return 0


def _run_window(config) -> int:
    """The run's window: its own, else its dataset's T; 128 without a run (--official)."""
    if config is None:
        return 128
    if config.window:
        return config.window
    from .train import dataset_spec

    return dataset_spec(config).default_window


def _write_predicted_segments(args: argparse.Namespace, config, scores: np.ndarray,
                              names: list[str], video: str) -> None:
    """``predict --segments``: the scores' segments as CSV, times from the feature
    rate."""
    from .segments import frame_segments, write_segments

    rate = args.feature_rate
    if rate is None:
        if config is None:
            raise ValueError("--segments with an --official checkpoint needs "
                             "--feature-rate (features per second)")
        from .train import dataset_spec

        rate = dataset_spec(config).features_per_second
    found = frame_segments(scores, rate, threshold=args.segment_threshold,
                           top_k=args.top_k, min_length=args.min_length,
                           merge_gap=args.merge_gap, names=names)
    write_segments(args.segments, video, found)
    print(f"{len(found)} segments (class, start s, end s, score) at {rate:g} features "
          f"per second: {args.segments}")


# --- the parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mladlib", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("synth", help="write the embedded dataset",
                            description="Generate the embedded synthetic dataset in the MultiTHUMOS layout.")
    p.add_argument("--size", default="default", choices=("default", "tiny", "multithumos"),
                   help="default: 320/80 videos, 128-d (trains in about a minute); tiny: 12/6 videos for tests; "
                        "multithumos: 200/213 videos of about 650 steps, 2048-d (default: %(default)s)")
    p.add_argument("--seed", type=seed_value, default=0, metavar="N",
                   help="generator seed (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", help="folder to write (default: the cache, $MLADLIB_CACHE or "
                   "~/.cache/mladlib)")
    p.set_defaults(func=cmd_synth)

    p = commands.add_parser("semireal", help="real frame labels with simulated features",
                            description="Write a dataset folder whose labels are the real frame labels of "
                                        "MultiTHUMOS or Charades and whose features are simulated from them "
                                        "(see mladlib.semireal).")
    p.add_argument("--dataset", required=True, choices=("multithumos", "charades"),
                   help="whose real frame labels to use (class-id conventions follow it)")
    p.add_argument("--annotations", required=True, metavar="PATH",
                   help="the annotation JSON, or a folder holding it with its split lists and classes.txt")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (an earlier semireal folder there is "
                   "replaced; any other existing folder is refused)")
    p.add_argument("--visibility", type=float, default=2.0, help="median per-class signal-to-noise ratio "
                   "(default: %(default)s)")
    p.add_argument("--spread", type=float, default=3.0, help="classes' visibility ranges over "
                   "[v/spread, v*spread] (default: %(default)s)")
    p.add_argument("--rho", type=float, default=0.5, help="AR(1) coefficient of the noise over time "
                   "(default: %(default)s)")
    p.add_argument("--feature-dim", type=positive_int, default=64, metavar="N",
                   help="feature size D (default: %(default)s)")
    p.add_argument("--seed", type=seed_value, default=0, metavar="N",
                   help="directions, visibilities, noise (default: %(default)s)")
    p.add_argument("--max-videos", type=positive_int, metavar="N",
                   help="keep the first N videos of each split list")
    p.set_defaults(func=cmd_semireal)

    p = commands.add_parser(
        "train", help="train a model, then evaluate it on the test split",
        description="Train a model (MLAD by default) and print its test results. With no option: MLAD on the "
                    "embedded dataset, about a minute on 2 CPU cores. Under torchrun every process trains on "
                    "its share of each epoch (DistributedDataParallel). Every option below overrides the "
                    "dataset's preset.")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    for name, help, description in (
        ("evaluate", "evaluate a checkpoint on a split",
         "Print frame mAP, table 2's metrics and the action-conditional metrics of a checkpoint on a split; "
         "optionally write every video's scores to HDF5. Data options default to the checkpoint's run."),
        ("predict", "scores and segments of one feature file",
         "Score one video's features with a checkpoint, print the classes with the "
         "highest peaks, and optionally write the scores (--out) and the action "
         "segments (--segments)."),
    ):
        p = commands.add_parser(name, help=help, description=description)
        p.add_argument("--checkpoint", required=True, metavar="PATH", help="best.pt or last.pt of a run "
                       "(or, with --official, a checkpoint of the public MLAD release)")
        p.add_argument("--official", action="store_true", help="the checkpoint is in the public MLAD release's "
                       "layout (needs --dataset and data options for evaluate)")
        p.add_argument("--num-heads", type=positive_int, default=1, metavar="N",
                       help="attention heads of an --official checkpoint "
                       "(default: %(default)s)")
        p.add_argument("--window", type=positive_int, metavar="N",
                       help="window length T (default: the run's, or the checkpoint's "
                       "positional table, else 128)")
        p.add_argument("--stride", type=positive_int, metavar="N",
                       help="stride of the sliding windows (default: window // 2)")
        p.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                       help="windows per batch (default: %(default)s)")
        p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
        p.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"),
                       help="autocast: auto (bf16 on CUDA), bf16, off (default: %(default)s)")
        if name == "evaluate":
            p.add_argument("--split", default="test", choices=("test", "val", "train"),
                           help="which split (val/train: the run's held-out and remaining training videos; "
                                "default: %(default)s)")
            p.add_argument("--out", metavar="PATH", help="write per-video scores to this HDF5 file")
            p.add_argument("--json", metavar="PATH", help="write the metrics to this JSON file")
            p.add_argument("--overwrite", action="store_true",
                           help="let --out/--json replace a checkpoint or a run "
                                "folder's file")
            p.add_argument("--taus", type=int, nargs="+", help="taus of the action-conditional metrics "
                           "(default: the run's, 0 20)")
            p.add_argument("--threshold", type=open_fraction, metavar="X",
                           help="score threshold in (0, 1) (default: the run's, 0.5)")
            _add_data_options(p, for_training=False)
            p.set_defaults(func=cmd_evaluate)
        else:
            p.add_argument("--features", required=True, metavar="FILE",
                           help="one video's features: FILE.npy (T, D), or an HDF5 file (pick the video with --video)")
            p.add_argument("--video", help="video id inside an HDF5 feature file")
            p.add_argument("--out", metavar="FILE.npy", help="write the scores (T, C) float32 here")
            p.add_argument("--top", type=positive_int, default=5, metavar="N",
                           help="classes to list (default: %(default)s)")
            g = p.add_argument_group(
                "segments", "(class, start s, end s, score) from the frame scores "
                "(mladlib.segments.frame_segments)")
            g.add_argument("--segments", metavar="FILE.csv",
                           help="write the segments here (video,class,name,"
                                "start_s,end_s,score)")
            g.add_argument("--segment-threshold", type=_unit_interval, default=0.5,
                           metavar="X", help="a step belongs to a segment when its "
                           "score reaches X (default: %(default)s)")
            g.add_argument("--top-k", type=positive_int, metavar="N",
                           help="keep each class's N best segments (default: all)")
            g.add_argument("--min-length", type=_seconds, default=0.0, metavar="S",
                           help="drop segments shorter than S seconds "
                                "(default: %(default)s)")
            g.add_argument("--merge-gap", type=_seconds, default=0.0, metavar="S",
                           help="join segments of a class at most S seconds apart "
                                "(default: %(default)s)")
            g.add_argument("--feature-rate", type=_positive_rate, metavar="R",
                           help="features per second of FILE (default: the run's "
                                "dataset preset, e.g. 3 for I3D at 24 fps)")
            p.set_defaults(func=cmd_predict)

    p = commands.add_parser("smoke", help="run every model variant once on random features",
                            description="Build every model variant and run one forward/backward pass.")
    p.add_argument("--seed", type=seed_value, default=0, metavar="N",
                   help="seed of the random features (default: %(default)s)")
    p.set_defaults(func=cmd_smoke)

    from .data.fetch import add_fetch_parser

    add_fetch_parser(commands)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a warning about the user's data as one ``warning: ...`` line on stderr, without
    the source file and line that Python's default adds."""
    print(f"warning: {message}", file=sys.stderr if file is None else file, flush=True)


def _interrupted(error: BaseException) -> bool:
    """Whether ``error`` was raised while a ``KeyboardInterrupt`` was being handled
    (e.g. a cleanup re-importing a module the Ctrl-C left half-initialised)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    import warnings

    previous_show, warnings.showwarning = warnings.showwarning, _one_line_warning
    debug = False
    try:
        parser = build_parser()  # imports torch's parts: a Ctrl-C may land here too
        parser.add_argument("--debug", action="store_true",
                            help="show the full traceback of every error")
        args = parser.parse_args(argv)
        debug = args.debug
        return args.func(args)
    except BrokenPipeError:  # output piped into e.g. head, which stopped reading
        sys.stdout = open(os.devnull, "w")
        return 141
    except KeyboardInterrupt:  # a second Ctrl-C, or one while importing: no traceback
        print("aborted", file=sys.stderr)
        return 130
    except Exception as error:
        if _interrupted(error):  # a cleanup failed after a Ctrl-C: the Ctrl-C counts
            print("aborted", file=sys.stderr)
            return 130
        from .train import NonFiniteLossError

        if debug or not isinstance(error, (ValueError, OSError, NonFiniteLossError)):
            raise  # a bug (or --debug): its traceback is wanted
        print(f"error: {error}", file=sys.stderr)
        if isinstance(error, NonFiniteLossError):
            return EXIT_DIVERGED
        # a full disk is not a bad option; FileNotFoundError and our ValueErrors are
        return EXIT_WRITE if isinstance(error, WriteError) else EXIT_USAGE
    finally:
        warnings.showwarning = previous_show


if __name__ == "__main__":
    sys.exit(main())
