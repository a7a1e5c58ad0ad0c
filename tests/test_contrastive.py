import math

import pytest
import torch
import torch.nn.functional as F

from brainkit.errors import ConfigError, DataError
from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig, build_objective


def test_infonce_matches_hand_computation():
    torch.manual_seed(0)
    brain, stim = torch.randn(7, 3, 5), torch.randn(7, 15)
    b = F.normalize(brain.flatten(1), dim=-1)
    s = F.normalize(stim, dim=-1)
    logits = (s @ b.T) / 0.1
    target = torch.arange(7)
    one_way = F.cross_entropy(logits, target)
    both = 0.5 * (one_way + F.cross_entropy(logits.T, target))
    assert torch.allclose(InfoNCE(InfoNCEConfig(temperature=0.1, bidirectional=False))(brain, stim), one_way)
    assert torch.allclose(InfoNCE(InfoNCEConfig(temperature=0.1))(brain, stim), both)


def test_perfect_alignment_gives_low_loss_and_learnable_temperature():
    x = torch.eye(6)
    assert InfoNCE(InfoNCEConfig(temperature=0.01))(x, x) < 1e-3
    loss = InfoNCE(InfoNCEConfig(learnable=True))
    assert loss.log_scale.requires_grad and math.isclose(
        float(loss.log_scale.detach().exp()), 1 / 0.07, rel_tol=1e-5
    )
    loss(torch.randn(5, 4), torch.randn(5, 4)).backward()
    assert loss.log_scale.grad is not None


def test_infonce_errors():
    with pytest.raises(DataError, match="7 brain rows but 6 stimulus rows"):
        InfoNCE()(torch.randn(7, 4), torch.randn(6, 4))
    with pytest.raises(DataError, match="brain embedding has 4 values per sample, stimulus 5"):
        InfoNCE()(torch.randn(7, 4), torch.randn(7, 5))
    with pytest.raises(ConfigError, match=r"InfoNCEConfig.temperature=0 is out of range: allowed x > 0"):
        InfoNCE(InfoNCEConfig(temperature=0))
    with pytest.raises(ConfigError, match="Unknown objective 'infonse'"):
        build_objective("infonse")
