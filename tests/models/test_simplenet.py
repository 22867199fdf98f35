"""SimpleNet (P21): reference vectors, the authors' key layout, exact counts, tiny forwards."""
from __future__ import annotations

import pytest
import timm
import torch

import archzoo
from archzoo.models.simplenet import LAYER_TABLES, SimpleNet
from archzoo.papers import card_for_model
from archzoo.reference import check_reference, load_counts, load_manifest, manifest_problems
from archzoo.validation import InputError
from archzoo.verify import count_params


@pytest.mark.parametrize("name", ["simplenet_cifar_a", "simplenet_imagenet_a"])
def test_reference_vectors(ref_file, name):
    r = check_reference(ref_file(name))
    assert r.ok, r


def test_manifest_and_exact_counts_of_every_released_variant(ref_dir):
    manifest = load_manifest("simplenet", ref_dir)
    counts = load_counts("simplenet", ref_dir)
    assert set(manifest) == set(counts)
    for variant, keys in manifest.items():
        with torch.device("meta"):
            m = timm.create_model(variant)
        assert manifest_problems(m, keys) == [], variant
        assert count_params(m) == counts[variant]["params"], variant


def test_key_indices_follow_dropout_modules():
    # cifar table: conv0..2 have dropouts (4 modules each), conv3 has none (3), then pool+dropout
    with torch.device("meta"):
        m = SimpleNet("simplenet_cifar_5m", mode=0, num_classes=10)
    keys = [k for k in m.state_dict() if k.endswith(".weight") and k.startswith("features.")]
    assert keys[:10] == [
        "features.0.weight", "features.1.weight", "features.4.weight", "features.5.weight",
        "features.8.weight", "features.9.weight", "features.12.weight", "features.13.weight",
        "features.17.weight", "features.18.weight",
    ]
    # a custom dropout on a table entry without one adds a module and shifts every later index
    with torch.device("meta"):
        m2 = SimpleNet("simplenet_cifar_5m", mode=0, num_classes=10, drop_rates={3: 0.1})
    assert "features.18.weight" in m2.state_dict() and "features.17.weight" not in m2.state_dict()
    bn = m.features[1]
    assert bn.momentum == 0.05 and bn.eps == 1e-5
    assert m.features[0].bias is not None


def test_stride_modes_and_feature_info():
    with torch.device("meta"):
        m1 = timm.create_model("simplenetv1_5m_m1")
        m2 = timm.create_model("simplenetv1_5m_m2")
    assert [m1.features[i].stride for i in (0, 4, 8)] == [(2, 2)] * 3
    assert [m2.features[i].stride for i in (0, 4, 8, 12)] == [(2, 2), (2, 2), (1, 1), (2, 2)]
    assert [f["reduction"] for f in m2.feature_info] == [2, 4, 8, 16, 32]
    with torch.device("meta"):
        feats = timm.create_model("simplenetv1_small_m2_05", features_only=True)
        outs = feats(torch.empty(1, 3, 224, 224))
    assert [o.shape[-1] for o in outs] == [112, 56, 28, 14, 7]
    assert [o.shape[1] for o in outs] == [32, 64, 64, 256, 128]


def test_cifar_net_takes_digits_shaped_input():
    # what `archzoo train --model simplenet_cifar_5m` on digits needs: in_chans=1, num_classes=10, 32x32
    with torch.device("meta"):
        m = archzoo.create_model("simplenet_cifar_5m", in_chans=1, num_classes=10)
        assert m(torch.empty(4, 1, 32, 32)).shape == (4, 10)
    assert m.features[0].in_channels == 1
    assert m.features[0].out_channels == 64 and m.features[0].kernel_size == (3, 3)
    rgb = card_for_model("simplenet_cifar_5m")[1].reference_params  # the authors' 3-channel count
    assert count_params(m) == rgb - 2 * 9 * 64  # two fewer input channels in the first conv
    with pytest.raises(InputError):
        m(torch.empty(1, 1, 8, 8, device="meta"))  # total stride 16


def test_tiny_forward_backward_and_head():
    torch.manual_seed(0)
    m = SimpleNet("simplenet_cifar_5m", num_classes=5, in_chans=1, scale=0.0625, mode=0)
    x = torch.randn(2, 1, 32, 32)
    out = m(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.eval()
    with torch.no_grad():
        feats = m.forward_features(x)
        # head = global MAX pooling (the paper), then the classifier
        assert torch.allclose(m(x), m.classifier(feats.amax((2, 3))))
        assert m.forward_head(feats, pre_logits=True).shape == (2, m.num_features)
    m.reset_classifier(3)
    assert m(x).shape == (2, 3)
    assert m.drop_rate == 0.0
    assert SimpleNet("simplenet_cifar_5m", mode=0, scale=0.0625, drop_rates={15: 0.2}).drop_rate == 0.2


def test_every_layer_table_builds_in_float64():
    for arch in LAYER_TABLES:
        m = SimpleNet(arch, num_classes=4, scale=0.0625, mode=0).double().eval()
        with torch.no_grad():
            assert m(torch.randn(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64
