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


def test_bench_render_look_switching_figures():
    pytest.importorskip("anny")
    pytest.importorskip("moderngl")
    from mio.bench.render import bench_render

    out = bench_render(RenderConfig(width=64, height=64), frames=6, cameras=("portrait",), look_b="nemo")
    fig = out["looks"]
    assert fig["looks"] == ["default", "nemo"] and fig["add_look_s"] >= 0
    s = fig["summary"]
    assert s["a_only_ms"] > 0 and s["b_only_ms"] > 0 and s["alternating_ms"] > 0 and "switch_overhead_ms" in s
    assert {"loadavg_1min_before", "other_cpus"} <= set(fig["load"])


def test_bench_render_refuses_an_unknown_second_look_before_timing_anything(tmp_path, capsys):
    from mio.cli import main

    out = tmp_path / "render.json"
    assert main(["bench", "render", "--look-b", "nobody", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "nobody" in err and "nemo" in err and "\n" not in err and not out.exists()
