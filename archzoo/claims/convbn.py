"""ConvBN (P25): Tune mode computes Eval mode's gradients while autograd keeps less memory.

Paper: You et al., "Efficient ConvBN Blocks for Transfer Learning and Beyond", ICLR 2024, arXiv 2305.11624.
Implementation measured: :func:`archzoo.methods.convbn.set_mode` (``"eval"`` vs ``"tune"``).
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from archzoo.claims._common import check_budget, new_figure, paired_ratio_median, save_figure, say

__all__ = ["tune_memory", "tune_gradients"]

# full: the paper's ResNet-50 at 224 px (its classification transfer experiments); smoke: ResNet-18, 64 px
_MEMORY = {"full": dict(model="resnet50", img_size=224, batch=16, repeats=5),
           "smoke": dict(model="resnet18", img_size=64, batch=2, repeats=1)}
_GRADS = {"full": dict(model="resnet50", img_size=128, batch=4),
          "smoke": dict(model="resnet18", img_size=64, batch=2)}


def _pretrained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm the running statistics and affine parameters of a trained network (fresh
    ones are the identity, under which Eval and Tune agree trivially)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
                if m.weight is not None:
                    m.weight.copy_(0.5 + torch.rand(n, generator=g))
                    m.bias.copy_(0.2 * torch.randn(n, generator=g))
    return model


def _two_modes(name: str, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, nn.Module, int]:
    """(Eval-mode model, Tune-mode copy, Conv-BN pairs), both in training mode (BatchNorm frozen)."""
    from archzoo.methods.convbn import set_mode
    from archzoo.registry import create_model

    torch.manual_seed(0)
    ev = _pretrained_like(create_model(name, num_classes=10)).to(dtype)
    tu = copy.deepcopy(ev)
    pairs = set_mode(ev, "eval", x[:2])
    set_mode(tu, "tune", x[:2])
    ev.train()
    tu.train()
    return ev, tu, pairs


def saved_tensor_bytes(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(activation bytes, other bytes) of the tensors autograd saves for backward during one forward
    of ``model(x)``: storages counted once, parameters excluded (both modes hold them anyway);
    activations are tensors whose leading dimension is the batch, "other" is the rest (Tune mode's
    fused weights W', b'). Deterministic: it depends only on the graph, not on the allocator."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[int] = set()
    totals = [0, 0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in seen and ptr not in params:
            seen.add(ptr)
            is_activation = t.dim() >= 2 and t.shape[0] == x.shape[0]
            totals[0 if is_activation else 1] += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    return totals[0], totals[1]


def tune_memory(budget: str = "full", out_dir: str | Path | None = None, *,
                verbose: bool = False) -> dict[str, float]:
    """Bytes autograd keeps for backward, Eval vs Tune mode, on a ResNet at a fixed input.

    Claim (arXiv 2305.11624, abstract and its efficiency tables of Eval vs Tune mode in detection and
    classification fine-tuning): Tune mode "significantly reduc[es] GPU memory footprint and training
    time" against Eval mode with the same results, because autograd no longer keeps each convolution's
    output for the frozen BatchNorm's backward. The authors' upstreamed version (pytorch/pytorch#108757)
    reports ResNet-50, batch 64, 224 px, forward + backward: 5.18 GB eager Eval mode vs 2.88 GB with the
    Tune rewrite (x1.80 less).

    Scaled down: GPU peak memory -> the exact bytes of the tensors saved for backward in one forward
    (saved-tensor hooks; the part of training memory the method changes; weights, gradients and the
    optimiser state are equal in both modes), ResNet-50 (timm, BatchNorm statistics and affine
    parameters randomised like a trained network's), batch 16 at 224 px, float32, CPU. Also the
    training-step time ratio Eval/Tune, modes interleaved (context: CPU, not the paper's GPU).

    Returns ``memory_ratio`` (Eval / Tune saved bytes, all of them), ``activation_ratio`` (batch-sized
    tensors only), the MiB of each, ``pairs`` (Conv-BN pairs switched), ``step_time_ratio`` (Eval / Tune
    seconds per step, > 1: Tune faster) and the input. ``budget="smoke"``: ResNet-18 at 64 px, batch 2.
    """
    check_budget(budget)
    c = _MEMORY[budget]
    torch.manual_seed(0)
    x = torch.randn(c["batch"], 3, c["img_size"], c["img_size"])
    y = torch.randint(0, 10, (c["batch"],))
    ev, tu, pairs = _two_modes(c["model"], x)
    say(verbose, f"{c['model']}: {pairs} Conv-BN pairs; counting saved tensors")
    ea, eo = saved_tensor_bytes(ev, x)
    ta, to = saved_tensor_bytes(tu, x)

    def step(model: nn.Module):
        def run() -> None:
            nn.functional.cross_entropy(model(x), y).backward()
            model.zero_grad(set_to_none=True)
        return run

    say(verbose, f"timing {c['repeats']} interleaved training steps per mode")
    te, tt, ratio = paired_ratio_median(step(ev), step(tu), c["repeats"])
    mib = 2.0 ** 20
    out = {
        "memory_ratio": (ea + eo) / (ta + to),
        "activation_ratio": ea / ta,
        "eval_saved_mib": (ea + eo) / mib,
        "tune_saved_mib": (ta + to) / mib,
        "eval_activation_mib": ea / mib,
        "tune_activation_mib": ta / mib,
        "tune_other_mib": to / mib,
        "eval_other_mib": eo / mib,
        "pairs": float(pairs),
        "step_time_ratio": ratio,
        "eval_step_seconds": te,
        "tune_step_seconds": tt,
        "batch": float(c["batch"]),
        "img_size": float(c["img_size"]),
        "threads": float(torch.get_num_threads()),
    }
    if out_dir is not None:
        fig, ax = new_figure(figsize=(6.0, 4.0))
        modes = ["Eval", "Tune"]
        act = [out["eval_activation_mib"], out["tune_activation_mib"]]
        oth = [out["eval_other_mib"], out["tune_other_mib"]]
        ax.bar(modes, act, color="tab:blue", label="activations (batch-sized)")
        ax.bar(modes, oth, bottom=act, color="tab:orange", label="other (Tune: fused W', b')")
        for i, (a, o) in enumerate(zip(act, oth)):
            ax.text(i, a + o, f"{a + o:.0f} MiB", ha="center", va="bottom")
        ax.set_ylabel("saved for backward (MiB)")
        ax.set_title(f"ConvBN on {c['model']}, batch {c['batch']}, {c['img_size']} px: "
                     f"Eval/Tune x{out['memory_ratio']:.2f}")
        ax.legend(loc="upper right")
        save_figure(fig, out_dir, "convbn_memory.png")
    return out


def tune_gradients(budget: str = "full", out_dir: str | Path | None = None, *,
                   verbose: bool = False) -> dict[str, float]:
    """Largest relative difference between Eval-mode and Tune-mode parameter gradients.

    Claim (arXiv 2305.11624, the Tune-mode section: Tune mode is functionally equivalent to Eval mode
    in forward and backward propagation, hence "as stable as Eval mode"): the same outputs and the same
    gradients for every parameter, the BatchNorm's affine parameters included (they now reach the loss
    through the fused weights W' = W * gamma / sqrt(var + eps)).

    Scaled down: one forward/backward of a randomly initialised ResNet-50 (timm; BatchNorm statistics and
    affine parameters randomised like a trained network's) on a batch of 4 random 128 px images with
    random labels, in float64 (the difference is then rounding only, ~1e-13) and float32.

    Returns ``grad_rel_diff`` (float64: max over parameter tensors of max|g_tune - g_eval| / max|g_eval|),
    ``grad_global_rel_diff`` (||g_tune - g_eval|| / ||g_eval|| over all parameters), the same two in
    float32 (``*_fp32``: rounding differences of the fused weights can flip near-ties of ReLU and max-pool,
    which moves the stem's gradient by up to ~1 % of its largest entry while the global difference stays
    ~1e-5), ``output_rel_diff`` (logits), the number of parameter tensors compared and of Conv-BN pairs.
    ``budget="smoke"``: ResNet-18 at 64 px, batch 2.
    """
    check_budget(budget)
    c = _GRADS[budget]
    out: dict[str, float] = {}
    per_param: dict[str, list[float]] = {}
    for dtype, tag in ((torch.float64, ""), (torch.float32, "_fp32")):
        torch.manual_seed(0)
        x = torch.randn(c["batch"], 3, c["img_size"], c["img_size"], dtype=dtype)
        y = torch.randint(0, 10, (c["batch"],))
        ev, tu, pairs = _two_modes(c["model"], x, dtype)
        say(verbose, f"{c['model']} {dtype}: {pairs} Conv-BN pairs; one forward/backward per mode")
        logits = []
        for m in (ev, tu):
            z = m(x)
            nn.functional.cross_entropy(z, y).backward()
            logits.append(z.detach())
        ge = dict(ev.named_parameters())
        rel, diff_sq, norm_sq = [], 0.0, 0.0
        for n, p in tu.named_parameters():
            a, b = ge[n].grad, p.grad
            if a is None and b is None:
                continue
            if a is None or b is None:
                raise AssertionError(f"parameter {n} has a gradient in one mode only")
            rel.append(float((b - a).abs().max() / a.abs().max().clamp_min(torch.finfo(dtype).tiny)))
            diff_sq += float((b - a).double().square().sum())
            norm_sq += float(a.double().square().sum())
        per_param[tag or "_fp64"] = rel
        out[f"grad_rel_diff{tag}"] = max(rel)
        out[f"grad_global_rel_diff{tag}"] = (diff_sq / norm_sq) ** 0.5
        out[f"output_rel_diff{tag}"] = float((logits[1] - logits[0]).abs().max() / logits[0].abs().max())
        out["params_compared"] = float(len(rel))
        out["pairs"] = float(pairs)
    out["img_size"] = float(c["img_size"])
    out["batch"] = float(c["batch"])
    if out_dir is not None:
        fig, ax = new_figure(figsize=(7.0, 4.0))
        for key, marker in (("_fp32", "."), ("_fp64", "x")):
            vals = [max(v, 1e-18) for v in per_param[key]]
            ax.semilogy(range(len(vals)), vals, marker, label=f"{key[1:]}: max {max(per_param[key]):.1e}")
        ax.set_xlabel("parameter tensor (model order)")
        ax.set_ylabel("max |g_tune - g_eval| / max |g_eval|")
        ax.set_title(f"ConvBN Tune vs Eval gradients, {c['model']} ({int(out['pairs'])} Conv-BN pairs)")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        save_figure(fig, out_dir, "convbn_gradients.png")
    return out
