"""SN-Netv2 (P34): reference outputs of every stitch configuration, the authors' stitching space,
exact counts, the authors' per-configuration FLOPs, run-time switching, LoRA without in-place merging."""
from __future__ import annotations

import pytest
import timm
import torch

import archzoo  # noqa: F401
from archzoo.models.snnet import (
    LoRALinear, SNNetv2, checkpoint_filter_fn, group_configs_by_flops, least_squares_stitch,
    reference_stitch_configs, stitch_config_flops, stitch_configs,
)
from archzoo.papers import card_for_model
from archzoo.reference import check_reference, read_reference
from archzoo.verify import build_on_meta, count_params


def _tiny(lora_r: int = 4, seed: int = 0, **kw) -> SNNetv2:
    """Anchors of depth 3 and 6 (ratio 2, like S+L), 2x2 tokens; LoRA B made non-zero."""
    torch.manual_seed(seed)
    m = SNNetv2(anchors=[dict(embed_dim=16, depth=3, num_heads=2), dict(embed_dim=24, depth=6, num_heads=2)],
                img_size=32, patch_size=16, num_classes=5, lora_r=lora_r, **kw)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.add_(0.05 * torch.randn_like(p))  # also non-zero lora_B and layer scales
    return m.double()


def test_reference_vector_every_configuration(ref_file):
    # __output__.<k> for every one of the 9 configurations, from the authors' UNMERGED state dict
    r = check_reference(ref_file("snnetv2_a"))
    assert r.ok, r


def test_stitching_space_is_the_authors(ref_file):
    ref = read_reference(ref_file("snnetv2_a"))
    depths = [a["depth"] for a in ref.config["anchors"]]
    configs, _, _ = stitch_configs(depths)
    assert dict(enumerate(configs)) == reference_stitch_configs(ref.meta)
    m = _tiny()
    assert m.train_configs == [int(i) for i in __import__("json").loads(ref.meta["all_cfgs"])]


@pytest.mark.parametrize("depths", [(12, 12), (12, 24)])
def test_135_configurations_for_12_block_small_anchors(depths):
    configs, n_layers, kinds = stitch_configs(depths)
    assert len(configs) == 135 and n_layers == (12, 11)
    assert {k: len(v) for k, v in kinds.items()} == {"anchor": 2, "sl": 11, "ls": 11, "lsl": 55, "sls": 55}
    # the authors' "front != 11": the small->large stitch after the small anchor's last block is never sampled
    assert configs[13]["stitch_cfgs"] == [[11, 12 * (depths[1] // 12)]] and 13 not in sum(kinds.values(), [])
    # routes are inclusive [begin, end] block ranges
    assert configs[2]["route"] == [[0, 0], [depths[1] // 12, depths[1]]]
    for cfg in configs[2:]:
        assert cfg["stitch_layer_ids"][-1] == -1 and len(cfg["route"]) == len(cfg["comb_id"])


def test_exact_parameter_counts_of_the_authors_code():
    # the cards' reference_params: the authors' SNNetv2(..., lora_r=64) with 1000 classes, counted
    for name in ("snnetv2_deit3_s_b", "snnetv2_deit3_s_l", "snnetv2_deit3_b_l"):
        m = build_on_meta(name)
        assert count_params(m) == card_for_model(name)[1].reference_params, name
        assert m.num_configs == 135
    m = build_on_meta("snnetv2_deit3_s_b")
    assert count_params(m.stitch_layers) == 8492160  # the 8.49 M of stitching layers


# fvcore multiply-adds of the authors' S+L model per configuration id (classification/results/
# stitches_res_s_l.txt and model_flops/flops_gradio_demo.json of ziplab/SN-Netv2)
_AUTHORS_SL_MACS = {
    0: 4608338304, 1: 61604135936, 2: 56843745792, 12: 9428588032, 14: 9523655552, 23: 52197297536,
    25: 57017547264, 40: 33309968384, 60: 52276031488, 80: 9504781184, 100: 14246296960, 134: 9504781184,
}


def test_flops_of_every_configuration_match_the_authors_fvcore_counts():
    flops = stitch_config_flops("snnetv2_deit3_s_l")  # all 135 on the meta device
    assert len(flops) == 135
    m = build_on_meta("snnetv2_deit3_s_l")
    tokens = 197
    for cid, macs in _AUTHORS_SL_MACS.items():
        # fvcore also counts every LayerNorm, 5 operations per element; archzoo counts matmuls only
        comb, route, _ = m._plan(cid)
        ln = sum(2 * (min(e, m.depths[a] - 1) - b + 1) * m.anchors[a].embed_dim for a, (b, e) in zip(comb, route))
        ln += m.anchors[comb[-1]].embed_dim
        assert flops[cid] // 2 + 5 * tokens * ln == macs, cid


def test_flops_sum_of_parts_equals_whole_forward():
    m = _tiny()
    parts = stitch_config_flops(m)
    whole = stitch_config_flops(m, whole_forward=True)
    assert parts == whole and len(set(parts.values())) > 3
    unmerged = stitch_config_flops(m, config_ids=[2], merged=False)
    assert unmerged[2] > parts[2]  # the low-rank branch costs extra unless merged


def test_switching_configurations_needs_no_rebuild():
    m = _tiny().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    params = {n: p.data_ptr() for n, p in m.named_parameters()}
    modules = [id(mod) for mod in m.modules()]
    with torch.no_grad():
        first = {}
        for cid in m.stitch_configs:
            m.set_stitch(cid)
            first[cid] = m(x)
        for cid in reversed(list(m.stitch_configs)):  # switch back in another order
            m.set_stitch(cid)
            assert torch.equal(m(x), first[cid])
    assert {n: p.data_ptr() for n, p in m.named_parameters()} == params
    assert [id(mod) for mod in m.modules()] == modules
    assert len({tuple(v.flatten().tolist()) for v in first.values()}) == len(first)  # all distinct
    with pytest.raises(ValueError):
        m.set_stitch(m.num_configs)


def test_state_dict_round_trip_does_not_depend_on_train_eval_mode():
    m = _tiny()
    m.sample_in_train = False
    sd_train = {k: v.clone() for k, v in m.state_dict().items()}
    m.eval()  # the authors merge LoRA into the weights here; archzoo must not
    sd_eval = m.state_dict()
    assert sd_train.keys() == sd_eval.keys() and all(torch.equal(sd_train[k], sd_eval[k]) for k in sd_train)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    for mode in ("train", "eval"):
        fresh = _tiny(seed=1)
        fresh.sample_in_train = False
        fresh.train(mode == "train")
        fresh.load_state_dict(checkpoint_filter_fn(sd_eval, fresh))
        fresh.eval()
        for cid in (2, 5, 7, 8):
            m.set_stitch(cid)
            fresh.set_stitch(cid)
            with torch.no_grad():
                assert torch.equal(fresh(x), m(x)), (mode, cid)
    # train-mode forward of a fixed configuration == eval-mode forward (no dropout here)
    m.train()
    m.set_stitch(7)
    y_train = m(x)
    m.eval()
    assert torch.allclose(y_train, m(x), rtol=0, atol=1e-14)


def test_lora_update_is_used_and_deploy_form_matches():
    m = _tiny().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    m.set_stitch(8)
    with torch.no_grad():
        y = m(x)
        with m.merged_stitching_layers():
            y_merged = m(x)
        assert all(layer._merged is None for layer in m.modules() if isinstance(layer, LoRALinear))
        for layer in m.modules():
            if isinstance(layer, LoRALinear):
                layer.lora_B.zero_()
        y_no_lora = m(x)
    assert torch.allclose(y, y_merged, rtol=0, atol=1e-13)
    assert not torch.allclose(y, y_no_lora)
    lin = m.stitch_layers[0][0].transform
    assert not lin.weight.requires_grad and lin.lora_A.requires_grad and lin.scaling == 1 / 4
    with pytest.raises(RuntimeError):
        with m.train().merged_stitching_layers():
            pass


def test_least_squares_initialisation():
    torch.manual_seed(0)
    x1 = torch.randn(2, 50, 6, dtype=torch.float64)
    w, b = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    w_fit, b_fit = least_squares_stitch(x1, x1 @ w.T + b)
    assert torch.allclose(w_fit, w, atol=1e-10) and torch.allclose(b_fit, b, atol=1e-10)

    m = _tiny(lora_r=0).train()
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    m.initialize_stitching_weights(x)
    assert m.training  # mode restored
    feats = [a.block_features(x) for a in m.anchors]
    for cfg in m.stitch_configs.values():
        if len(cfg["comb_id"]) != 2:
            continue
        (front, end), sid, (a0, a1) = cfg["stitch_cfgs"][0], cfg["stitch_layer_ids"][0], cfg["comb_id"]
        src = feats[a0][front].reshape(-1, m.anchors[a0].embed_dim)
        res = m.stitch_layers[a0][sid](src) - feats[a1][end - 1].reshape(-1, m.anchors[a1].embed_dim)
        # least squares: the residual is orthogonal to the inputs and to the constant
        assert res.sum(0).abs().max() < 1e-8 and (src.T @ res).abs().max() < 1e-8


def test_flops_grouped_sampling():
    # the authors' grouping: sorted by FLOPs, a new group whenever more than `gap` from the group's first
    assert group_configs_by_flops({0: 0.5, 1: 4.6, 2: 5.0, 3: 5.7, 4: 9.0, 5: 1.2}, gap=1.0) == [[0], [5], [1, 2], [3], [4]]
    m = _tiny()
    groups = m.flops_groups()
    assert sorted(sum(groups, [])) == sorted(m.train_configs)
    flops = stitch_config_flops(m)
    for g in groups:  # every group spans at most `gap` G multiply-adds
        assert (max(flops[i] for i in g) - min(flops[i] for i in g)) / 2e9 <= m.flops_gap
    gen = torch.Generator().manual_seed(0)
    drawn = {m.sample_config(gen) for _ in range(200)}
    assert drawn <= set(m.train_configs) and len(drawn) > 1
    m.flops_gap = 0.0
    m.set_flops_groups([[0], [1, 2], [3]])
    m.flops_sampling_k = 2.0
    assert torch.allclose(m.group_probs(), torch.tensor([1 / 3, 5 / 6, 4 / 3], dtype=torch.float64) / 2.5)
    # training forward draws a configuration itself (the authors' forward does)
    m.train()
    m(torch.randn(1, 3, 32, 32, dtype=torch.float64))
    assert m.last_config_id in (0, 1, 2, 3)


def test_timm_interface_and_meta_build():
    with torch.device("meta"):
        m = timm.create_model("snnetv2_deit3_s_b", anchors=[dict(embed_dim=16, depth=2, num_heads=2),
                                                            dict(embed_dim=32, depth=2, num_heads=4)],
                              img_size=32, num_classes=3, lora_r=2, stitch_config=3)
        assert m(torch.empty(2, 3, 32, 32)).shape == (2, 3)
    m = _tiny().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    m.set_stitch(5)  # large -> small: ends in the 16-wide small anchor
    feats = m.forward_features(x)
    assert feats.shape == (2, 5, 16) and m.num_features == 16 and m.get_classifier() is m.anchors[0].head
    assert m.forward_head(feats, pre_logits=True).shape == (2, 16)
    out, inter = m.forward_intermediates(x)
    cfg = m.stitch_configs[5]
    assert len(inter) == sum(min(e, m.depths[a] - 1) - b + 1 for a, (b, e) in zip(cfg["comb_id"], cfg["route"]))
    assert inter[0].shape == (2, 24, 2, 2) and inter[-1].shape == (2, 16, 2, 2)
    assert torch.equal(m.forward_head(out), m(x))
    m.reset_classifier(7)
    assert m(x).shape == (2, 7)
    with pytest.raises(ValueError):
        timm.create_model("snnetv2_deit3_s_b", features_only=True)


def test_checkpoint_filter_maps_layer_scale_keys():
    sd = {"model": {"module.anchors.0.blocks.3.gamma_1": 1, "anchors.1.blocks.0.gamma_2": 2,
                    "stitch_layers.0.1.transform.lora_A": 3}}
    assert checkpoint_filter_fn(sd, None) == {"anchors.0.blocks.3.ls1.gamma": 1, "anchors.1.blocks.0.ls2.gamma": 2,
                                              "stitch_layers.0.1.transform.lora_A": 3}
