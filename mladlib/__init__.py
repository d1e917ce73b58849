"""mladlib: MLAD (CVPR 2021) for multi-label temporal action localization, its baselines,
data loaders for MultiTHUMOS/Charades features, an embedded synthetic dataset, a trainer,
and the paper's metrics."""

__version__ = "0.1.0"

from . import data, metrics, models, train  # noqa: E402
from .models import MLAD, MLADLayer, build_model  # noqa: E402
from .utils import seed_everything  # noqa: E402

__all__ = ["data", "metrics", "models", "train", "MLAD", "MLADLayer", "build_model", "seed_everything", "__version__"]
