"""Which inputs a trained decoder relies on: gradient x input saliency per voxel (or vertex).

For a model ``f`` mapping voxels (n, n_voxels) to embeddings (n, ...) and the true target embeddings ``y``, the
saliency of voxel ``v`` is the mean over samples of ``|x_v * d cos(f(x), y) / d x_v|``: how much the decoded
embedding's agreement with the truth moves with that voxel, at the voxel's own value (Simonyan et al. 2014;
Shrikumar et al. 2017). Any differentiable torch decoder works (Lite-Mind, the MindEye MLP, ridge as a linear
map); the model is run in eval mode and left as it was.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from brainkit.errors import DataError


def input_saliency(
    model: torch.nn.Module, x: np.ndarray, targets: np.ndarray, batch_size: int = 64
) -> np.ndarray:
    """(n_voxels,) float64: the mean |gradient x input| of cos(f(x), y), over the n samples of ``x``
    (n, n_voxels, as the model reads them) and ``targets`` (n, *output_shape)."""
    x, targets = np.asarray(x, dtype=np.float32), np.asarray(targets, dtype=np.float32)
    if x.ndim != 2 or len(x) != len(targets) or len(x) == 0:
        raise DataError(f"saliency needs x (n, n_voxels) and n targets; found {x.shape} and {targets.shape}.")
    was_training = model.training
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    total = np.zeros(x.shape[1])
    try:
        for start in range(0, len(x), batch_size):
            batch = torch.as_tensor(x[start : start + batch_size], device=device).requires_grad_(True)
            y = torch.as_tensor(targets[start : start + batch_size], device=device)
            agreement = F.cosine_similarity(model(batch).flatten(1).float(), y.flatten(1), dim=1)
            (gradient,) = torch.autograd.grad(agreement.sum(), batch)
            total += (gradient * batch).detach().abs().sum(0).double().cpu().numpy()
    finally:
        model.train(was_training)
    return total / len(x)


__all__ = ["input_saliency"]
