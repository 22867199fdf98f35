"""IBN-Net (P46): reference vectors, manifests, exact counts, IN/BN placement, tiny forwards."""
from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

import archzoo  # noqa: F401
from archzoo.models.ibnnet import IBN, DenseNetIBN, ResNetIBN
from archzoo.reference import check_reference, load_counts, load_manifest, manifest_problems
from archzoo.verify import count_params


@pytest.mark.parametrize("name", ["ibnnet_resnet_ibna_a", "ibnnet_resnet_ibnb_a", "ibnnet_densenet_a"])
def test_reference_vectors(ref_file, name):
    r = check_reference(ref_file(name))
    assert r.ok, r


def test_exact_counts_of_every_variant_and_manifests_of_released_ones(ref_dir):
    counts = load_counts("ibn", ref_dir)
    manifest = load_manifest("ibn", ref_dir)
    assert len(counts) == 18 and len(manifest) == 12 and set(manifest) <= set(counts)
    for variant, c in counts.items():
        with torch.device("meta"):
            m = timm.create_model(variant)
        assert count_params(m) == c["params"], variant
        if variant in manifest:
            assert manifest_problems(m, manifest[variant]) == [], variant


def test_ibn_layer_splits_channels_as_the_authors():
    torch.manual_seed(0)
    x = torch.randn(2, 10, 5, 5)
    a = IBN(10).eval()  # ResNet flavour: IN on the first 5 channels
    assert (a.IN.num_features, a.BN.num_features) == (5, 5)
    ref = torch.cat((F.instance_norm(x[:, :5], eps=1e-5), F.batch_norm(x[:, 5:], torch.zeros(5), torch.ones(5))), 1)
    assert torch.allclose(a(x), ref, atol=1e-5)
    d = IBN(10, 0.4, in_first=False).eval()  # DenseNet flavour: BN first on int(10*0.6)=6 channels
    assert (d.BN.num_features, d.IN.num_features) == (6, 4)
    ref = torch.cat((F.batch_norm(x[:, :6], torch.zeros(6), torch.ones(6)), F.instance_norm(x[:, 6:], eps=1e-5)), 1)
    assert torch.allclose(d(x), ref, atol=1e-5)
    # instance statistics are per sample also in eval: a sample's output does not depend on the batch
    assert torch.allclose(a(x)[:1], a(x[:1]))


def test_ibn_placement():
    with torch.device("meta"):
        a = timm.create_model("resnet50_ibn_a")
        b = timm.create_model("resnet50_ibn_b")
        d = timm.create_model("densenet121_ibn_a")
    assert all(isinstance(blk.bn1, IBN) for s in (a.layer1, a.layer2, a.layer3) for blk in s)
    assert not any(isinstance(blk.bn1, IBN) for blk in a.layer4)
    assert isinstance(b.bn1, nn.InstanceNorm2d) and isinstance(a.bn1, nn.BatchNorm2d)
    with_in = [f"layer{i}.{j}" for i in range(1, 5) for j, blk in enumerate(getattr(b, f"layer{i}")) if blk.IN is not None]
    assert with_in == ["layer1.2", "layer2.3"]  # last block of stages 1-2 only
    ibn_layers = [n for n, mod in d.named_modules() if isinstance(mod, IBN)]
    assert ibn_layers[:3] == [f"features.denseblock1.denselayer{j}.norm1" for j in (1, 4)] + [
        "features.denseblock2.denselayer1.norm1"]
    assert not any("denseblock4" in n for n in ibn_layers)
    # the authors' IBN-b quirk: a single-block stage gets no IN at all
    m = ResNetIBN("basic", layers=(1, 2, 1, 1), ibn_cfg=("b", "b", None, None), widths=(4, 4, 8, 8))
    assert m.layer1[0].IN is None and m.layer2[1].IN is not None


def test_features_only_and_intermediates_on_meta():
    with torch.device("meta"):
        f = timm.create_model("resnet18_ibn_b", features_only=True)
        outs = f(torch.empty(1, 3, 224, 224))
        g = timm.create_model("densenet121_ibn_a", features_only=True)
        douts = g(torch.empty(1, 3, 224, 224))
    assert [o.shape[-1] for o in outs] == [112, 56, 28, 14, 7]
    assert [o.shape[1] for o in douts] == [64, 256, 512, 1024, 1024]
    assert [o.shape[-1] for o in douts] == [112, 56, 28, 14, 7]


@pytest.mark.parametrize("build", [
    lambda: ResNetIBN("bottleneck", (1, 2, 1, 1), ("a", "a", "a", None), widths=(4, 8, 8, 8), num_classes=3, in_chans=1),
    lambda: ResNetIBN("basic", (1, 2, 1, 1), ("b", "b", None, None), widths=(4, 8, 8, 8), num_classes=3, in_chans=1),
    lambda: ResNetIBN("bottleneck", (1, 1, 1, 1), ("a", "a", "a", None), widths=(8, 8, 8, 8), cardinality=4,
                      base_width=8, se_reduction=4, num_classes=3, in_chans=1),
    lambda: DenseNetIBN(growth_rate=4, block_config=(2, 4, 1, 1), num_init_features=8, bn_size=2, num_classes=3, in_chans=1),
])
def test_tiny_forward_backward_at_non_224_size(build):
    torch.manual_seed(0)
    m = build()
    x = torch.randn(2, 1, 64, 48)  # the authors' 7x7 average pool would fail here; adaptive pooling does not
    out = m(x)
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.reset_classifier(5)
    assert m(x).shape == (2, 5)
    assert m.forward_head(m.forward_features(x), pre_logits=True).shape == (2, m.num_features)
