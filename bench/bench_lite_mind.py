"""Lite-Mind training step on CPU (fp32): time, FLOP rate and fraction of the machine's matmul peak.

    python bench/bench_lite_mind.py [--batch 64] [--steps 3] [--threads N] [--compile]

One step = forward of the paper preset ``nsd_subj01`` (15,724 voxels -> 257 x 768), InfoNCE on the flattened,
L2-normalised outputs against random targets with logit scale exp(8) (as the paper and released code), backward,
AdamW step. FLOPs are the matmul FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode`` over one step
(FFTs and elementwise ops are not counted, so "fraction of peak" is matmul work / time / peak). The peak is the
best ``torch.mm`` rate on large square fp32 matrices in the same process and thread count.

Rows: ours with the paper's full FreMLP (default), ours with the diagonal FreMLP (the released arithmetic), and a
reference written the way the released code computes (below; our own code after METHODS.md section 3): Conv1d
patches, a Python loop over filters with the complex square, (B, 1, N, d) FreMLP layout with stored d x d
matrices read through ``einsum('bijd,dd->bijd')``, separate ReLU and softshrink, zero-filled buffers.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from brainkit.models import build_model, count_parameters, model_config
from brainkit.models.lite_mind import FrequencyMLP, GlobalFilter
from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig


# ------------------------------------------------------------------------- released-style reference model
class RefFilter(nn.Module):
    def __init__(self, dim: int, n: int, n_filters: int) -> None:
        super().__init__()
        self.n_filters = n_filters
        self.complex_weight = nn.Parameter(torch.randn(n_filters, n // 2 + 1, dim, 2) * 0.02)

    def forward(self, x):
        x = torch.fft.rfft(x.to(torch.float32), dim=1, norm="ortho")
        power = x**2
        values = []
        for k in range(self.n_filters):
            w = torch.view_as_complex(self.complex_weight[k])
            values.append(
                x * w * torch.cos(torch.tensor((2 * k + 1) * torch.pi / (2 * self.n_filters))) * power
            )
        return torch.fft.irfft(sum(values), dim=1, norm="ortho")


class RefFreMLP(nn.Module):
    def __init__(self, dim: int, n: int) -> None:
        super().__init__()
        self.n = n
        self.embeddings = nn.Parameter(torch.randn(1, dim))  # stored, never used (as released)
        self.r = nn.Parameter(0.02 * torch.randn(dim, dim))
        self.i = nn.Parameter(0.02 * torch.randn(dim, dim))
        self.rb = nn.Parameter(0.02 * torch.randn(dim))
        self.ib = nn.Parameter(0.02 * torch.randn(dim))

    def forward(self, x):  # (B, 1, N, d)
        b, nd, n, d = x.shape
        x = torch.fft.rfft(x, dim=2, norm="ortho")
        real = torch.zeros([b, nd, n // 2 + 1, d])
        imag = torch.zeros([b, nd, n // 2 + 1, d])
        real = F.relu(
            torch.einsum("bijd,dd->bijd", x.real, self.r)
            - torch.einsum("bijd,dd->bijd", x.imag, self.i)
            + self.rb
        )
        imag = F.relu(
            torch.einsum("bijd,dd->bijd", x.imag, self.r)
            + torch.einsum("bijd,dd->bijd", x.real, self.i)
            + self.ib
        )
        y = F.softshrink(torch.stack([real, imag], dim=-1), lambd=0.01)
        return torch.fft.irfft(torch.view_as_complex(y), n=self.n, dim=2, norm="ortho")


class RefBlock(nn.Module):
    def __init__(
        self, dim: int, n: int, n_filters: int, drop_path: float, mlp_ratio: float = 4.0, drop: float = 0.1
    ) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim, eps=1e-6) for _ in range(3))
        self.filter = RefFilter(dim, n, n_filters)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(drop), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(drop)
        self.fremlp = RefFreMLP(dim, n)
        self.p = drop_path

    def drop_path(self, x):
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * mask / (1 - self.p)

    def forward(self, x):
        y = self.drop_path(self.drop(self.mlp(self.norm2(self.filter(self.norm1(x))))))
        y = self.drop_path(self.fremlp(self.norm3(y.unsqueeze(1)))).squeeze(1)
        return x + y


class RefBackbone(nn.Module):
    def __init__(
        self, n_voxels=15724, patch=450, dims=(512, 256, 128, 257), depths=(2, 10, 2, 4), out_dim=768,
        mlp_ratio=4.0, n_filters=2, drop=0.1, drop_path=0.15, cls_only=False,
    ):  # fmt: skip
        super().__init__()
        self.n = (n_voxels - patch) // patch + 1
        self.patch = nn.Conv1d(1, dims[0], kernel_size=patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, self.n, dims[0]))
        rates = torch.linspace(0, drop_path, sum(depths)).tolist()
        self.stages, self.downs, j = nn.ModuleList(), nn.ModuleList(), 0
        for dim, depth in zip(dims, depths):
            blocks = (RefBlock(dim, self.n, n_filters, rates[j + k], mlp_ratio, drop) for k in range(depth))
            self.stages.append(nn.Sequential(*blocks))
            j += depth
        self.downs.extend(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.cls_only = cls_only  # brainkit's CLS-only head (mean over patches, Linear), for its 1-D outputs
        self.head = nn.Linear(dims[-1] if cls_only else self.n, out_dim)

    def forward(self, x):
        x = self.patch(x.view(x.shape[0], 1, -1)).flatten(2).transpose(1, 2) + self.pos
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.downs):
                x = self.downs[i](x)
        if self.cls_only:
            return self.head(self.norm(x).mean(1))
        return self.head(self.norm(x).transpose(1, 2)).flatten(1)


def lite_mind_reference(model: nn.Module, config) -> tuple[nn.Module, object, int, str] | str:
    """For bench/bench_models.py: the reference at ``config``'s sizes, a forward taking brainkit's input (padded
    with zeros to ours' patch count, as ``voxel_remainder="pad"`` does, so both see the same patches), reference
    params - ours (the stored, never read ``FreMLP.embeddings``; with ours' diagonal FreMLP also the unread
    off-diagonal d x d entries) and what the reference is. A 1-D output uses ours' CLS-only head (mean over
    patches, Linear), said in the note: the released DFTBackbone has only the token head."""
    c = config
    n_used = model.n_patches * c.patch_size
    reference = RefBackbone(n_used, c.patch_size, c.dims, c.depths, c.output_shape[-1], c.mlp_ratio,
                            c.n_filters, c.dropout, c.drop_path, len(c.output_shape) == 1)  # fmt: skip

    def forward(x):
        x = F.pad(x, (0, n_used - x.shape[1])) if n_used > x.shape[1] else x[:, :n_used]
        return reference(x).view(x.shape[0], *c.output_shape)

    per_block = [
        (d + (2 * (d * d - d) if c.fremlp == "diagonal" else 0)) * n for d, n in zip(c.dims, c.depths)
    ]
    note = "Lite-Mind_DFTBackbone(bench_lite_mind.RefBackbone)" + (
        "+ours_CLS_head" if len(c.output_shape) == 1 else ""
    )
    return reference, forward, sum(per_block), note


# ------------------------------------------------------------------------------------------- measuring
def matmul_peak(size: int = 4096, repeats: int = 3) -> float:
    """Best fp32 ``torch.mm`` rate in GFLOP/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def infonce(brain: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """One-directional InfoNCE (image rows over brain columns), fixed logit scale exp(8)."""
    brain = F.normalize(brain.flatten(1), dim=-1)
    image = F.normalize(image.flatten(1), dim=-1)
    logits = math.exp(8.0) * image @ brain.T
    return F.cross_entropy(logits, torch.arange(len(brain)))


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, use_compile: bool, fused: bool, loss_fn):
    # fused=True: PyTorch's fused CPU AdamW kernel (one pass per tensor); False: the per-parameter loop that
    # timm's AdamW (released code) and torch's default on CPU run.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=fused)
    forward = torch.compile(model) if use_compile else model

    def step() -> None:
        loss = loss_fn(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def dft_matmul_flops(model: nn.Module, batch: int) -> int:
    """FLOPs of our DFT-as-matmul products in one step (forward + input gradient), which the FFT-based
    reference does with uncounted FFTs; subtracted for the "model FLOPs" columns."""
    total = 0
    for module in model.modules():
        if isinstance(module, GlobalFilter):
            n, dim = module.dft.shape[1], module.weight.shape[2]
            macs = 2 * (2 * module.n_freq) * n * batch * dim  # forward and inverse DFT
        elif isinstance(module, FrequencyMLP):
            n, dim = module.dft.shape[1], module.bias_real.numel()
            first = 2 * n if module.mode == "full" else n  # the mix matrix reads both x Wr and x Wi
            macs = (2 * module.n_freq) * first * batch * dim + n * (2 * module.n_freq) * batch * dim
        else:
            continue
        total += 2 * 2 * macs  # 2 FLOPs per MAC; forward + gradient w.r.t. the input
    return total


def prepare(model: nn.Module, batch: int, use_compile: bool, fused: bool, loss_fn) -> dict:
    """Build the step, run it once (warm-up, compilation) and once more under the FLOP counter."""
    model.train()
    torch.manual_seed(0)
    x, y = torch.randn(batch, 15724), F.normalize(torch.randn(batch, 257 * 768), dim=-1)
    step = make_step(model, x, y, use_compile, fused, loss_fn)
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    return {
        "step": step,
        "flops": flops,
        "model_flops": flops - dft_matmul_flops(model, batch),
        "first": first,
        "times": [],
        "ratios": [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd versions of ours")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    load_before = os.getloadavg()
    variants = [("ours, full FreMLP (paper)", "full", False), ("ours, diagonal FreMLP", "diagonal", False)]
    if args.compile:
        variants += [
            ("ours, full, torch.compile", "full", True),
            ("ours, diagonal, torch.compile", "diagonal", True),
        ]
    # ours: brainkit's InfoNCE (same loss, cosines from norms instead of normalised copies); reference: as released
    ours_loss = InfoNCE(InfoNCEConfig(temperature=math.exp(-8.0), bidirectional=False, gather=False))
    rows = []
    for label, fremlp, use_compile in variants:
        torch.manual_seed(0)
        model = build_model("lite_mind", model_config("lite_mind", "nsd_subj01", {"fremlp": fremlp}))
        result = prepare(model, args.batch, use_compile, fused=True, loss_fn=ours_loss)
        rows.append((label, count_parameters(model), result))
    if not args.skip_reference:
        torch.manual_seed(0)
        reference = RefBackbone()
        result = prepare(reference, args.batch, False, fused=False, loss_fn=infonce)
        rows.append(("released-style reference", count_parameters(reference), result))
    # Rounds interleave the variants and a peak probe, so that each sees the same (shared-machine) load.
    peaks = []
    for _ in range(args.steps):
        peaks.append(matmul_peak())
        for _, _, r in rows:
            start = time.perf_counter()
            r["step"]()
            r["times"].append(time.perf_counter() - start)
            r["ratios"].append(r["model_flops"] / r["times"][-1] / 1e9 / peaks[-1])
    load_after = os.getloadavg()
    peak = max(peaks)

    print(f"torch {torch.__version__}, threads {args.threads}, batch {args.batch}, fp32, {args.steps} rounds")
    print(
        f"load average (1/5/15 min) before {'/'.join(f'{v:.2f}' for v in load_before)}, "
        f"after {'/'.join(f'{v:.2f}' for v in load_after)}"
    )
    print(
        f"matmul peak (torch.mm 4096^2, best of 3, one probe per round): best {peak:.1f} GFLOP/s, "
        f"probes {', '.join(f'{p:.1f}' for p in peaks)}"
    )
    print(
        "FLOPs: FlopCounterMode over one step (matmuls only; FFTs and elementwise ops uncounted). 'model' "
        "excludes our DFT-as-matmul products, so ours and the reference count the same arithmetic."
    )
    header = (
        f"{'variant':31s} {'params':>11s} {'GFLOP':>6s} {'model':>6s} {'step s':>7s} {'GFLOP/s':>8s} "
        f"{'of best peak':>12s} {'of round peak':>13s} {'1st step s':>10s}"
    )
    print(header)
    for label, n_params, r in rows:
        time_s = statistics.median(r["times"])
        rate = r["model_flops"] / time_s / 1e9
        print(
            f"{label:31s} {n_params:11,d} {r['flops'] / 1e9:6.1f} {r['model_flops'] / 1e9:6.1f} {time_s:7.2f} "
            f"{rate:8.1f} {rate / peak:12.1%} {statistics.median(r['ratios']):13.1%} {r['first']:10.2f}"
        )
    if not args.skip_reference:
        ref_time = statistics.median(rows[-1][2]["times"])
        for label, _, r in rows[:-1]:
            print(
                f"reference step time / '{label}' step time: {ref_time / statistics.median(r['times']):.2f}x"
            )


if __name__ == "__main__":
    main()
