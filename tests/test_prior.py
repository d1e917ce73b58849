"""Prior-bias initialisation of the classifiers (mladlib.models.prior)."""

import pytest
import torch

from mladlib.models import build_model
from mladlib.models.prior import init_prior_bias


@pytest.mark.parametrize("name", ["linear", "cf", "mlad", "full"])
def test_every_classifier_starts_at_the_class_log_odds(name):
    sizes = {"linear": {}, "cf": {"hidden_dim": 4}}.get(name, {"hidden_dim": 4, "num_layers": 1})
    model = build_model(name, 3, 8, **sizes).eval()
    rate = torch.tensor([0.5, 0.05, 0.0])  # an absent class gets a finite bias
    init_prior_bias(model, rate)
    heads = [m for m in model.modules() if hasattr(m, "bias") and getattr(m, "bias") is not None
             and m.bias.shape == (3,)]
    assert heads, "no classifier found"
    for head in heads:
        torch.testing.assert_close(head.bias.detach(), torch.logit(rate.clamp(1e-4, 1 - 1e-4)).float())
    # with class features switched off, every logit is exactly its class's prior log-odds
    if name == "cf":
        torch.nn.init.zeros_(model.classifier.weight)
        logits = model(torch.randn(1, 5, 8)).logits
        torch.testing.assert_close(logits, torch.logit(rate.clamp(1e-4, 1 - 1e-4)).expand(1, 5, 3))


def test_wrong_class_count_is_refused():
    with pytest.raises(ValueError, match="4 classes, the model 3"):
        init_prior_bias(build_model("cf", 3, 8, hidden_dim=4), torch.full((4,), 0.1))
