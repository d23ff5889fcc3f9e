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
