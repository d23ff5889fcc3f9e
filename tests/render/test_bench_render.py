"""`mio bench render` runs and reports every figure (speed itself is never asserted in tests)."""

import pytest

from mio.core.config import RenderConfig

pytestmark = pytest.mark.slow


def test_bench_render_reports_each_camera():
    pytest.importorskip("anny")
    pytest.importorskip("moderngl")
    from mio.bench.render import BUDGET_MS, bench_render

    out = bench_render(
        RenderConfig(width=64, height=64, samples=0), frames=3, cameras=("portrait", "full_body")
    )
    assert out["budget_ms"] == BUDGET_MS and set(out["cameras"]) == {"portrait", "full_body"}
    for fig in out["cameras"].values():
        for part in ("pose", "draw_readback", "total"):
            assert fig[part]["median_ms"] > 0 and fig[part]["p90_ms"] >= fig[part]["median_ms"]
        assert {"loadavg_1min_before", "other_cpus"} <= set(fig["load"])


def test_bench_render_multiview_figures():
    pytest.importorskip("anny")
    pytest.importorskip("moderngl")
    from mio.bench.render import bench_render

    out = bench_render(RenderConfig(width=64, height=64), frames=4, cameras=("portrait",), views=3)
    mv = out["multiview"]
    assert len(mv["azimuths_deg"]) == 3 and mv["summary"]["views"] == 3
    s = mv["summary"]
    assert s["batch_ms_per_frame"] > 0 and s["separate_calls_ms_per_frame"] > 0
    assert 10 < s["reprojection_psnr_db"] < 60 and 0 < s["reprojection_ssim"] <= 1 and 0 < s["overlap"] < 1
