"""BatchNorm statistics across processes: a task's BatchNorm layers as ``SyncBatchNorm`` while it trains.

With a global batch split over N processes, each BatchNorm layer would otherwise normalise by the statistics of
its own 1/N of the batch, so N processes would train a different model from one. :func:`synced_batchnorm`
converts the layers in place (``torch.nn.SyncBatchNorm.convert_sync_batchnorm``: same parameters, same buffers)
for the block and puts layers of the original classes back afterwards, holding the trained parameters and
statistics, so the model leaves the trainer as it came (a plain ``BatchNorm3d`` never waits on other processes).

``SyncBatchNorm`` needs GPU (or XPU / HPU) tensors: torch raises for CPU inputs in training mode (checked with
torch 2.13). On CPU the layers are left as they are, with a warning that their statistics stay per process.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

log = logging.getLogger(__name__)


def batchnorm_layers(module: nn.Module) -> dict[str, type[nn.Module]]:
    """Names and classes of the BatchNorm layers below ``module`` (SyncBatchNorm excluded)."""
    return {
        name: type(layer)
        for name, layer in module.named_modules()
        if isinstance(layer, _BatchNorm) and not isinstance(layer, nn.SyncBatchNorm) and name
    }


@contextlib.contextmanager
def synced_batchnorm(module: nn.Module, enabled: bool, device_type: str = "cuda") -> Iterator[None]:
    """Run the block with ``module``'s BatchNorm layers as ``SyncBatchNorm`` (``enabled`` and not on CPU)."""
    layers = batchnorm_layers(module) if enabled else {}
    if layers and device_type == "cpu":
        log.warning(
            "%s: %d BatchNorm layers keep per-process statistics: SyncBatchNorm needs GPU tensors, so on CPU "
            "several processes do not train exactly what one process would.",
            type(module).__name__,
            len(layers),
        )
        layers = {}
    if not layers:
        yield
        return
    nn.SyncBatchNorm.convert_sync_batchnorm(module)  # in place below the top module
    try:
        yield
    finally:
        for name, cls in layers.items():
            parent_name, _, attribute = name.rpartition(".")
            parent = module.get_submodule(parent_name)
            setattr(parent, attribute, _plain(getattr(parent, attribute), cls))


def _plain(synced: nn.SyncBatchNorm, cls: type[nn.Module]) -> nn.Module:
    """A ``cls`` layer holding ``synced``'s parameters and buffers (the same tensors, not copies)."""
    plain = cls(synced.num_features, synced.eps, synced.momentum, synced.affine, synced.track_running_stats)
    for name, parameter in synced.named_parameters(recurse=False):
        setattr(plain, name, parameter)
    for name, buffer in synced.named_buffers(recurse=False):
        setattr(plain, name, buffer)
    return plain.train(synced.training)
