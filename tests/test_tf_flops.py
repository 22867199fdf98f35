"""archzoo.tf_flops: TF1-profiler FLOP counting, checked against counts done by hand."""
import torch
from torch import nn

from archzoo.tf_flops import count_tf_profiler_flops
from archzoo.verify import count_flops


class _Tiny(nn.Module):
    def __init__(self, ln_eps: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(4, eps=ln_eps)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        y = self.act(self.bn(self.conv(x)))               # [B, 4, 8, 8]
        y = y + x.mean(1, keepdim=True)                    # mean over 3 channels, then an add
        y = self.norm(y.permute(0, 2, 3, 1))               # [B, 8, 8, 4]
        y = torch.softmax(y * 0.5, -1)
        return self.fc(nn.functional.avg_pool2d(y.permute(0, 3, 1, 2), 2).flatten(2).mean(-1))


def _by_hand(ln_unfused: bool) -> int:
    n = 4 * 8 * 8
    conv = 2 * (3 * 9) * n + n           # 2 x MACs + BiasAdd
    bn, gelu = 2 * n, 4 * n              # x * inv + b; RealDiv, AddV2, Mul, Mul
    mean_add = 3 * 64 + n                # Mean over the input, then the broadcast add
    ln = 9 * n + 3 * 64 if ln_unfused else 2 * n
    softmax = n + 5 * n                  # the Mul by 0.5, then 5 per element
    pool = 4 * (4 * 4 * 4)               # 2x2 kernel x 64 outputs
    head = 64 + 2 * 4 * 5 + 5            # Mean over 16 cells x 4, then MatMul + BiasAdd
    return conv + bn + gelu + mean_add + ln + softmax + pool + head


def test_counts_match_tf_rules_by_hand():
    for eps, unfused in ((1e-6, True), (1e-3, False)):
        model = _Tiny(eps)
        assert count_tf_profiler_flops(model, 8, device="cpu") == _by_hand(unfused)
        # at batch 4 everything scales (nothing here is per-graph work), and meta tensors count the same
        assert count_tf_profiler_flops(model.to("meta"), 8, batch_size=4) == _by_hand(unfused)


def test_per_graph_work_is_shared_by_the_batch():
    class Once(nn.Module):
        def tf_profiler_graph_flops(self, x):
            return 800

        def forward(self, x):
            return x * 2

    n = 3 * 8 * 8
    assert count_tf_profiler_flops(Once(), 8, device="cpu", batch_size=1) == 800 + n
    assert count_tf_profiler_flops(Once(), 8, device="cpu", batch_size=8) == 100 + n


def test_differs_from_flop_counter_mode_only_by_elementwise_work():
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    assert count_tf_profiler_flops(conv, 8, device="cpu") == count_flops(conv, 8, device="cpu")
