"""Start every classifier at the classes' base rates.

A classifier with bias 0 predicts probability 0.5 for every class, while most classes are
present in a few percent of the steps; with Adam's step size of about the learning rate per
step, a bias needs thousands of steps to travel from 0 to ``logit(0.05) = -2.9``, and until
then the loss is dominated by that miscalibration. Setting each bias to the log-odds of its
class's frequency in the training labels (the "prior" initialisation of Lin et al.'s focal
loss) removes that phase. The paper does not mention it; its long training makes it moot.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .baselines import LinearBaseline
from .layers import ClassClassifiers


def init_prior_bias(model: nn.Module, positive_rate: Tensor) -> None:
    """Set each per-class classifier's bias in ``model`` to ``logit(positive_rate)``.

    ``positive_rate (C,)``: the fraction of training steps on which each class is
    present, clipped to ``[1e-4, 1 - 1e-4]`` so absent classes get a finite bias.
    """
    logit = torch.logit(positive_rate.double().clamp(1e-4, 1 - 1e-4)).float()
    found = False
    with torch.no_grad():
        for module in model.modules():
            bias = module.bias if isinstance(module, ClassClassifiers) else (
                module.linear.bias if isinstance(module, LinearBaseline) else None)
            if bias is not None:
                if bias.shape != logit.shape:
                    raise ValueError(
                        f"positive_rate has {logit.numel()} classes, "
                        f"the model {bias.numel()}"
                    )
                bias.copy_(logit.to(bias.device))
                found = True
    if not found:
        raise ValueError(
            f"{type(model).__name__} has no per-class classifier to initialise"
        )
