"""Training, evaluation and checkpoints (paper section 5.1), on one process or many.

Typical use from a notebook::

    from mladlib import train
    result = train.train(epochs=5)                 # MLAD on the embedded dataset
    print(result.table())                          # test f-mAP, table 2's metrics
    result.history[-1]["val_frame_map"]

    config = train.make_config("multithumos", annotations="multithumos.json",
                               features=["rgb.h5", "flow.h5"], run_dir="runs/mt")
    result = train.train(config, log=print)

    model, config = train.load_model("runs/mt/best.pt")
    result = train.evaluate(model, dataset, window=128)  # an Evaluation
    result.frame_map, result.action_conditional[0]["mAP_AC"]
    scores = train.predict(model, dataset)               # video_id -> (T_k, C)
    one = train.predict(model, features, window=128)     # (T, D) -> (T, C)

The command line (``python -m mladlib train``) and ``torchrun`` call the same code.
"""

from .cache import cached_run_dir, cached_train, config_key, load_run
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .config import DATASETS, PRESETS, RESUMABLE, TrainConfig, make_config
from .datasets import DataSplits, dataset_spec, load_splits
from .distributed import DistributedContext, setup_distributed
from .epoch import NonFiniteLossError
from .evaluate import Evaluation, evaluate, format_results, metrics_from_predictions
from .inference import NonFiniteScoresError, check_model_fits, predict
from .loss import LossParts, masked_bce, mlad_loss
from .run_log import progress_enabled
from .run_result import RunResult
from .signals import EXIT_CODES, GracefulStop
from .trainer import Trainer, train

__all__ = [
    "cached_train", "cached_run_dir", "config_key", "load_run",
    "TrainConfig", "PRESETS", "DATASETS", "RESUMABLE", "make_config",
    "DataSplits", "load_splits", "dataset_spec",
    "Trainer", "train", "RunResult", "NonFiniteLossError", "progress_enabled",
    "predict", "check_model_fits", "NonFiniteScoresError",
    "evaluate", "Evaluation", "metrics_from_predictions", "format_results",
    "save_checkpoint", "load_checkpoint", "load_model",
    "mlad_loss", "masked_bce", "LossParts",
    "DistributedContext", "setup_distributed", "GracefulStop", "EXIT_CODES",
]
