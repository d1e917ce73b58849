"""MLAD and its baselines (paper section 3, tables 1, 5, S2, S4).

The MLAD layer is written twice: :mod:`.reference` (the textbook code, the default) and
:mod:`.fast` (CPU speed tricks, tested equal); ``MLAD(..., implementation=...)`` picks
one when the model is built (:func:`with_implementation` builds a copy on the other).
Every model takes one frozen :class:`ModelOptions`; every model maps features
``x (B, T, F)`` and an optional padding mask ``(B, T)`` to a :class:`ModelOutput`
holding logits ``(B, T, C)``.
"""

from .baselines import (
    MODEL_LABELS, MODEL_VARIANTS, FullAttentionBaseline, LinearBaseline, Variant, build_model, count_parameters,
    model_options, with_implementation,
)
from .layers import ClassClassifiers, ClassFeatures, PositionalEncoding, sinusoidal_table
from .mlad import MLAD, ModelOutput
from .official import PublicLayoutMLAD, load_official_checkpoint
from .options import BRANCHES, IMPLEMENTATIONS, ModelOptions
from .prior import init_prior_bias
from .reference import AttentionBlock, MLADLayer, attention

__all__ = [
    "MLAD", "MLADLayer", "ModelOutput", "ModelOptions", "ClassFeatures", "ClassClassifiers", "AttentionBlock",
    "PositionalEncoding", "sinusoidal_table", "LinearBaseline", "FullAttentionBaseline",
    "MODEL_VARIANTS", "MODEL_LABELS", "Variant", "build_model", "count_parameters", "with_implementation",
    "PublicLayoutMLAD", "load_official_checkpoint", "init_prior_bias", "model_options",
    "attention", "BRANCHES", "IMPLEMENTATIONS",
]
