"""CLIP-MUSED's losses on inputs with known answers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from brainkit.errors import ConfigError, DataError
from brainkit.objectives.semantic import (
    SemanticLoss,
    SemanticLossConfig,
    orthogonality_loss,
    rdm,
    rsm_loss,
)


def test_rdm_known_values() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    expected = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    assert torch.allclose(rdm(x), expected, atol=1e-6)


def test_rsm_loss_zero_for_scaled_copy_and_known_value() -> None:
    x = torch.randn(7, 5)
    assert rsm_loss(x, 3.0 * x).item() == pytest.approx(0.0, abs=1e-6)
    # 2 orthogonal rows vs 2 identical rows: RDMs differ by 1 in the two off-diagonal cells -> mean 2/4
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert rsm_loss(a, b).item() == pytest.approx(0.5)


def test_orthogonality_loss_known_values() -> None:
    high = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    assert orthogonality_loss(high, torch.tensor([[0.0, 5.0], [0.0, -1.0]])).item() == pytest.approx(0.0)
    assert orthogonality_loss(high, high).item() == pytest.approx(1.0)
    # raw tokens (the released form): high high^T = [[1, 2], [2, 4]] -> (1 + 4 + 4 + 16) / 4 = 6.25
    assert orthogonality_loss(high, high, "raw").item() == pytest.approx(6.25)
    low = torch.tensor([[3.0, 4.0], [0.0, 2.0]])  # high low^T = [[3, 0], [6, 0]] -> (9 + 36) / 4 = 11.25
    assert orthogonality_loss(high, low, "raw").item() == pytest.approx(11.25)
    # normalised: [[0.6, 0], [0.6, 0]] -> (0.36 + 0.36) / 4 = 0.18
    assert orthogonality_loss(high, low).item() == pytest.approx(0.18)
    with pytest.raises(ConfigError, match="set orthogonality_tokens to one of"):
        SemanticLoss(SemanticLossConfig(orthogonality_tokens="unit"))


def test_total_is_weighted_sum_with_paper_defaults() -> None:
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 4), (torch.rand(6, 4) > 0.5).float()
    high, low, fh, fl = torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 3), torch.randn(6, 9)
    loss = SemanticLoss()
    assert loss.config == SemanticLossConfig(1.0, 1e-3, 1e-3, 0.1)
    total, parts = loss(logits, labels, high, low, fh, fl)
    expected = (
        F.binary_cross_entropy_with_logits(logits, labels)
        + 1e-3 * orthogonality_loss(high, low)
        + 1e-3 * rsm_loss(high, fh)
        + 0.1 * rsm_loss(low, fl)
    )
    assert torch.allclose(total, expected)
    assert set(parts) == {"bce", "orthogonality", "rsm_high", "rsm_low"}
    only_bce, parts = SemanticLoss(SemanticLossConfig(orthogonality=0, rsm_high=0, rsm_low=0))(
        logits, labels, high, low, fh, fl
    )
    assert set(parts) == {"bce"} and torch.allclose(only_bce, parts["bce"])


def test_bce_of_confident_correct_logits_is_small() -> None:
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    total, _ = SemanticLoss()(20 * (2 * labels - 1), labels)
    assert total.item() < 1e-8
    total, _ = SemanticLoss()(torch.zeros(1, 3), labels)
    assert total.item() == pytest.approx(math.log(2))


def test_bad_inputs_raise() -> None:
    with pytest.raises(DataError, match=r"must both be \(batch, n_classes\)"):
        SemanticLoss()(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(DataError, match=r"high_features has 4 rows, the logits 3 \(the batch\)"):
        SemanticLoss()(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 2), None, torch.zeros(4, 2))
    with pytest.raises(ConfigError, match=r"rsm_low=-1.0 is out of range: allowed x >= 0"):
        SemanticLoss(SemanticLossConfig(rsm_low=-1.0))
