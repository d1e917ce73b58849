"""MLAD and its baselines (paper section 3, tables 1, 5, S2, S4).

The MLAD layer is written twice: :mod:`.reference` (the textbook code, the default) and
:mod:`.fast` (CPU speed tricks, tested equal); ``MLAD(..., implementation=...)`` picks one.
Every model maps features ``x (B, T, F)`` and an optional padding mask ``(B, T)`` to a
:class:`ModelOutput` holding logits ``(B, T, C)``.
"""

from .baselines import (
    MODEL_LABELS, MODEL_VARIANTS, FullAttentionBaseline, LinearBaseline, build_model, count_parameters, model_options,
)
from .fast import IMPLEMENTATIONS, set_implementation
from .layers import ClassClassifiers, ClassFeatures, PositionalEncoding, sinusoidal_table
from .mlad import MLAD, ModelOutput
from .reference import AttentionBlock, MLADLayer, attention
from .official import PublicLayoutMLAD, load_official_checkpoint
from .prior import init_prior_bias

__all__ = [
    "MLAD", "MLADLayer", "ModelOutput", "ClassFeatures", "ClassClassifiers", "AttentionBlock",
    "PositionalEncoding", "sinusoidal_table", "LinearBaseline", "FullAttentionBaseline",
    "MODEL_VARIANTS", "MODEL_LABELS", "build_model", "count_parameters",
    "PublicLayoutMLAD", "load_official_checkpoint", "init_prior_bias", "model_options",
    "attention", "IMPLEMENTATIONS", "set_implementation",
]
