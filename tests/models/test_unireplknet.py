"""UniRepLKNet (P16, arXiv 2311.15599; P11, arXiv 2410.08049): exact counts and the authors' key/shape
manifests of both forms, reference vectors of the authors' code (training and deploy form), the exact
re-parameterisation in float64 and float32, the timm interface and the other-modality front ends.

Full-size models are only built on the meta device; forwards run at widths 8-64 on 32-64 px inputs."""
from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import archzoo
from archzoo.checkpoint import apply_checkpoint_filter
from archzoo.models.unireplknet import (
    DILATED_BRANCHES,
    DilatedReparamBlock,
    UniRepLKNet,
    UniRepLKNetAudio,
    UniRepLKNetBlock,
    UniRepLKNetTimeSeries,
    UniRepLKNetVideo,
    _model_from_authors_config,
    checkpoint_filter_fn,
    default_kernel_sizes,
    dilate_kernel,
)
from archzoo.papers import find_card
from archzoo.reference import check_reference, load_counts, load_manifest, manifest_problems, read_reference
from archzoo.validation import InputError
from archzoo.verify import count_params
from archzoo.claims.unireplknet import perturb_like_trained

VARIANTS = ["a", "f", "p", "n", "t", "s", "b", "l", "xl"]
TINY = dict(depths=(1, 1, 2, 1), dims=(8, 16, 32, 64), kernel_sizes=((3,), (13,), (13, 3), (13,)))


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return timm.create_model(name, **kwargs)


_randomise = perturb_like_trained  # the claims' experiment perturbs the same way


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


# ---- full size, meta device ----------------------------------------------------------------------
@pytest.mark.parametrize("v", VARIANTS)
def test_counts_and_manifests_of_both_forms(v, ref_dir):
    name = f"unireplknet_{v}"
    counts, manifests = load_counts("unirep")[name], load_manifest("unirep")
    train, deploy = _meta(name), _meta(name, deploy=True)
    assert manifest_problems(train, manifests[name]) == []
    assert manifest_problems(deploy, manifests[f"{name}_deploy"]) == []
    assert count_params(train) == counts["params_1k"]
    assert count_params(deploy) == counts["params_1k_deploy"]
    if counts["params_21841"] is not None:
        with torch.device("meta"):
            train.reset_classifier(21841)
        assert count_params(train) == counts["params_21841"]


@pytest.mark.parametrize("v", ["a", "t"])
def test_training_checkpoint_loads_into_the_deploy_model(v, ref_dir):
    """The authors released training-form checkpoints only: the filter fuses them for deploy=True
    (here on the meta device, keys and shapes of the full-size models)."""
    name = f"unireplknet_{v}"
    assert manifest_problems(_meta(name, deploy=True), load_manifest("unirep")[name]) == []


def test_kernel_size_lists_are_the_authors():
    assert default_kernel_sizes((2, 2, 6, 2)) == ((3, 3), (13, 13), (13,) * 6, (13, 13))
    assert default_kernel_sizes((3, 3, 18, 3))[2] == (13, 3) * 9
    assert default_kernel_sizes((3, 3, 27, 3))[2] == (13, 3, 3) * 9
    with pytest.raises(ValueError, match="no default kernel sizes"):
        default_kernel_sizes((1, 1, 1, 1))


def test_cards(ref_dir):
    card, journal, counts = find_card(16), find_card(11), load_counts("unirep")
    assert card.title.startswith("UniRepLKNet: A Universal Perception Large-Kernel ConvNet")
    assert journal.title == "Scaling Up Your Kernels: Large Kernel Design in ConvNets towards Universal Representations"
    assert journal.arxiv == "2410.08049" and card.arxiv == "2311.15599"
    assert {v.model for v in card.variants} == {f"unireplknet_{v}" for v in VARIANTS}
    assert len({v.name for v in card.variants}) == len(card.variants)  # labels tell the forms apart
    for v in card.variants:
        deploy = v.model_kwargs.get("deploy", False)
        key = "params_21841" if v.model_kwargs.get("num_classes") == 21841 else (
            "params_1k_deploy" if deploy else "params_1k")
        assert v.reference_params == counts[v.model][key], v.name
        assert ("deploy" in v.name) == deploy


# ---- reference vectors of the authors' code ------------------------------------------------------
@pytest.mark.parametrize("name", ["unireplknet_a", "unireplknet_deploy_a"])
def test_reference(name, ref_file):
    r = check_reference(ref_file(name))
    assert r.ok, r


def test_our_reparameterisation_gives_the_authors_deploy_weights(ref_file):
    train = read_reference(ref_file("unireplknet_a"))
    fused = read_reference(ref_file("unireplknet_deploy_a"))
    model = _model_from_authors_config(train.config).double().eval()
    model.load_state_dict(train.state_dict, strict=True)
    x = train.input.double()
    with torch.no_grad():
        before = model(x)
        model.reparameterize()
        after = model(x)
    assert _rel(after, before) <= 1e-9  # exact up to float64 rounding
    ours = model.state_dict()
    assert set(ours) == set(fused.state_dict)
    for k, ref in fused.state_dict.items():
        assert ours[k].shape == ref.shape, k
        if ref.is_floating_point():
            # the authors' fused file was computed in float32 (their conversion only runs there)
            assert torch.allclose(ours[k], ref, rtol=1e-5, atol=1e-6), k
    # and the deploy model built directly loads it strictly
    deploy = _model_from_authors_config(fused.config).double().eval()
    deploy.load_state_dict(ours, strict=True)
    with torch.no_grad():
        assert _rel(deploy(x), before) <= 1e-9


# ---- re-parameterisation on every kernel kind ----------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
def test_reparameterize_every_kernel_size(dtype, tol):
    ks = sorted(DILATED_BRANCHES)[1:]  # 7..17 (5 is a plain conv in a block, as in the authors' code)
    kernel_sizes = ((3, 5, 0), tuple(ks[:3]), tuple(ks[3:]), (13,))
    cfg = dict(depths=(3, 3, 3, 1), dims=(8, 8, 8, 16), kernel_sizes=kernel_sizes, num_classes=5)
    torch.manual_seed(0)
    model = _randomise(UniRepLKNet(**cfg).to(dtype)).eval()
    x = torch.randn(2, 3, 64, 64, dtype=dtype)
    with torch.no_grad():
        before = model(x)
        model.reparameterize()
        after = model(x)
        model.reparameterize()  # idempotent
        again = model(x)
    assert _rel(after, before) <= tol
    assert torch.equal(after, again)
    deploy = UniRepLKNet(**cfg, deploy=True)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        k: tuple(v.shape) for k, v in deploy.state_dict().items()}
    assert model.state_dict()["stages.1.0.dwconv.lk_origin.weight"].dtype == dtype


def test_timm_reparameterize_model_uses_the_block_hooks():
    from timm.utils.model import reparameterize_model

    torch.manual_seed(0)
    model = _randomise(UniRepLKNet(**TINY, num_classes=3)).double().eval()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    fused = reparameterize_model(model)  # walks children, calls each block's reparameterize()
    with torch.no_grad():
        assert _rel(fused(x), model(x)) <= 1e-9
    assert set(fused.state_dict()) == set(UniRepLKNet(**TINY, num_classes=3, deploy=True).state_dict())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())


def test_reparameterize_after_a_generic_conv_bn_fuser():
    """archzoo.deploy may fold plain Conv-BN pairs before calling the family hook: still exact."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    torch.manual_seed(0)
    model = _randomise(UniRepLKNet(**TINY, num_classes=3)).double().eval()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        before = model(x)
        blk = model.stages[1][0]
        blk.dwconv.lk_origin = fuse_conv_bn_eval(blk.dwconv.lk_origin, blk.dwconv.origin_bn)
        blk.dwconv.origin_bn = nn.Identity()
        blk.dwconv.dil_conv_k5_1 = fuse_conv_bn_eval(blk.dwconv.dil_conv_k5_1, blk.dwconv.dil_bn_k5_1)
        blk.dwconv.dil_bn_k5_1 = nn.Identity()
        model.reparameterize()
        assert _rel(model(x), before) <= 1e-9


def test_dilated_kernel_equals_the_dilated_conv():
    torch.manual_seed(0)
    w, x = torch.randn(4, 1, 3, 3, dtype=torch.float64), torch.randn(1, 4, 20, 20, dtype=torch.float64)
    dense = dilate_kernel(w, 3)
    assert dense.shape[-1] == 7
    a = torch.nn.functional.conv2d(x, w, padding=3, dilation=3, groups=4)
    b = torch.nn.functional.conv2d(x, dense, padding=3, groups=4)
    assert torch.allclose(a, b, rtol=0, atol=1e-12)


def test_dilated_reparam_block_branches_and_errors():
    blk = DilatedReparamBlock(4, 13)
    names = {n.split(".")[0] for n, _ in blk.named_parameters()}
    assert names == {"lk_origin", "origin_bn", "dil_conv_k5_1", "dil_conv_k7_2", "dil_conv_k3_3",
                     "dil_conv_k3_4", "dil_conv_k3_5", "dil_bn_k5_1", "dil_bn_k7_2", "dil_bn_k3_3",
                     "dil_bn_k3_4", "dil_bn_k3_5"}
    with pytest.raises(ValueError, match="kernel sizes"):
        DilatedReparamBlock(4, 8)
    with pytest.raises(ValueError, match="kernel size"):
        UniRepLKNetBlock(4, 4)
    with pytest.raises(ValueError, match="kernel sizes for"):
        UniRepLKNet(depths=(1, 1, 1, 1), dims=(8, 8, 8, 8), kernel_sizes=((3,), (3,), (3, 3), (3,)))


# ---- checkpoints ----------------------------------------------------------------------------------
def test_filter_unwraps_and_fuses_training_checkpoints():
    torch.manual_seed(0)
    train = _randomise(UniRepLKNet(**TINY, num_classes=3)).double().eval()
    sd = {f"module.{k}": v for k, v in train.state_dict().items()}
    deploy = UniRepLKNet(**TINY, num_classes=3, deploy=True).double().eval()
    mapped = checkpoint_filter_fn({"model": sd}, deploy)
    deploy.load_state_dict(mapped, strict=True)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert _rel(deploy(x), train(x)) <= 1e-9
    # a training model gets the training keys unchanged
    assert set(apply_checkpoint_filter(sd, train)) == set(train.state_dict())


def test_load_checkpoint_of_training_weights_into_deploy(tmp_path):
    torch.manual_seed(0)
    train = _randomise(UniRepLKNet(**TINY, num_classes=3)).eval()
    torch.save({"model": train.state_dict()}, tmp_path / "ckpt.pth")
    deploy = archzoo.load_checkpoint(UniRepLKNet(**TINY, num_classes=3, deploy=True).eval(), tmp_path / "ckpt.pth")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert _rel(deploy(x), train(x)) <= 1e-5


# ---- timm interface ------------------------------------------------------------------------------
def test_timm_interface_training_step_and_features(saved_tensors):
    torch.manual_seed(0)
    model = timm.create_model("unireplknet_a", num_classes=4, drop_path_rate=0.1, drop_rate=0.1,
                              **{k: v for k, v in TINY.items()})
    x = torch.randn(2, 3, 32, 32)
    saved_plain, _ = saved_tensors(lambda: model.eval()(x))
    model.set_grad_checkpointing(True)
    saved_ckpt, out_eval = saved_tensors(lambda: model(x))
    assert saved_ckpt < saved_plain / 2, (saved_ckpt, saved_plain)  # the blocks really are checkpointed
    with torch.no_grad():
        torch.testing.assert_close(out_eval, model.forward_head(model.forward_features(x)))
    out = model.train()(x)
    assert out.shape == (2, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 64)
    model.reset_classifier(0)
    assert model(x).shape == (2, 64)
    feats = timm.create_model("unireplknet_a", features_only=True, **TINY)
    outs = feats(x)
    assert [o.shape[1] for o in outs] == [8, 16, 32, 64]
    assert [o.shape[-1] for o in outs] == [8, 4, 2, 1]
    assert feats.feature_info.reduction() == [4, 8, 16, 32]


def test_input_checks_and_pretrained_cfg():
    model = archzoo.create_model("unireplknet_a", **TINY)
    with pytest.raises(InputError):
        model(torch.randn(1, 1, 32, 32))
    assert model.pretrained_cfg["hf_hub_id"] == "DingXiaoH/UniRepLKNet"
    assert _meta("unireplknet_xl").num_classes == 1000  # default tag: the 1k fine-tuned weights
    assert _meta("unireplknet_xl").pretrained_cfg["input_size"] == (3, 384, 384)


# ---- other modalities ----------------------------------------------------------------------------
def test_audio_front_end():
    torch.manual_seed(0)
    model = UniRepLKNetAudio(num_classes=6, variant=None, **TINY).eval()
    spec = torch.randn(2, 40, 32)  # (batch, frames, mel bins)
    with torch.no_grad():
        out = model(spec)
        assert out.shape == (2, 6)
        assert torch.equal(out, model.backbone(spec.transpose(1, 2).unsqueeze(1)))  # (B, 1, F, T)
    assert model.backbone.downsample_layers[0][0].in_channels == 1
    with pytest.raises(InputError):
        model(torch.randn(2, 1, 40, 32))


def test_time_series_front_end():
    torch.manual_seed(0)
    model = _randomise(UniRepLKNetTimeSeries(seq_len=16, num_vars=3, pred_len=4, embed_dim=64, variant=None,
                                             **TINY)).double().eval()
    assert model.map_size == (32, 32)  # 16 steps x 64 features -> one 32x32 map
    x = torch.randn(2, 16, 3, dtype=torch.float64)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 4, 3)
        # the forecast follows the series' scale and offset (instance normalisation)
        assert torch.allclose(model(10 * x + 5), 10 * y + 5, rtol=1e-4, atol=1e-4)
        before = y
        model.reparameterize()
        assert _rel(model(x), before) <= 1e-9
    with pytest.raises(ValueError, match="square"):
        UniRepLKNetTimeSeries(seq_len=10, num_vars=1, pred_len=1, embed_dim=3, variant=None, **TINY)
    with pytest.raises(InputError):
        model(torch.randn(2, 15, 3, dtype=torch.float64))


def test_video_front_end():
    torch.manual_seed(0)
    model = UniRepLKNetVideo(num_classes=5, num_frames=4, variant=None, **TINY).eval()
    clip = torch.randn(1, 3, 4, 16, 16)
    with torch.no_grad():
        out = model(clip)
        assert out.shape == (1, 5)
        assert torch.equal(out, model.backbone(clip.reshape(1, 3, 32, 32)))  # the authors' plain reshape
    with pytest.raises(ValueError, match="perfect square"):
        UniRepLKNetVideo(num_frames=6, variant=None, **TINY)
    with pytest.raises(InputError):
        model(torch.randn(1, 3, 5, 16, 16))


# ---- full size (slow) ----------------------------------------------------------------------------
@pytest.mark.slow
def test_full_size_a_reparameterisation_float32():
    torch.manual_seed(0)
    model = _randomise(timm.create_model("unireplknet_a"), seed=1).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
        model.reparameterize()
        assert _rel(model(x), before) <= 1e-4
    assert count_params(model) == load_counts("unirep")["unireplknet_a"]["params_1k_deploy"]
