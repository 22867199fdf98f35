"""archzoo compare: the Pareto front of (throughput, accuracy) and the leaderboard plot."""
from __future__ import annotations

from archzoo.compare import CompareRow, pareto_front, plot_leaderboard


def test_pareto_front_marks_only_undominated_points():
    # (throughput, top-1): b dominates a; c is fastest; d ties b in accuracy but is slower
    points = [(100.0, 80.0), (150.0, 90.0), (300.0, 70.0), (120.0, 90.0)]
    assert pareto_front(points) == [False, True, True, False]
    assert pareto_front([(1.0, 1.0)]) == [True]


def test_leaderboard_plot_is_written(tmp_path):
    rows = [CompareRow("a", 90.0, 1_000_000, 0.1, 150.0, 5.0, 10.0, "r/a", True),
            CompareRow("b", 80.0, 2_000_000, 0.2, 100.0, 8.0, 12.0, "r/b", False)]
    path = plot_leaderboard(rows, tmp_path / "lb.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
