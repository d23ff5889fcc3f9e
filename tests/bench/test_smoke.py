"""One smoke test of `bench perf` / `bench iis --quick` logic on fake backends (no timed assertions)."""

from __future__ import annotations

import asyncio
import json

from mio.bench import report
from mio.bench.iis import bench_iis
from mio.bench.perf import bench_perf
from mio.core.config import MioConfig
from tests.fakes import fake_models


def test_perf_and_iis_quick_on_fakes(tmp_path):
    cfg = MioConfig()
    models = fake_models()

    async def fake_pipeline(config, turns, progress):
        return {"summary": {"ttfa_p50_s": 0.5, "ttfv_minus_ttfa_p50_s": 0.04, "sustained_fps": 25.0,
                            "barge_in_s": 0.05, "frames_skipped": 0, "talker_rtf": 0.05}}

    def fake_render(config, frames, cameras):
        return {"frames": frames, "cameras": {c: {"total": {"median_ms": 8.0, "p90_ms": 9.0}} for c in cameras}}

    perf = asyncio.run(bench_perf(cfg, quick=True, models=models, pipeline_fn=fake_pipeline, render_fn=fake_render))
    s = perf["summary"]
    assert s["ttfa_p50_s"] == {"median": 0.5, "budget": 0.7, "unit": "s", "ok": True}
    assert s["render_ms_per_frame"]["median"] == 8.0
    assert s["face_ms_per_frame"]["median"] is not None and s["body_ms_per_frame"]["median"] is not None
    assert s["memory_retrieval_ms"]["median"] > 0  # the memory graph, measured at 10k nodes / 50k edges
    models.renderer.close()

    result = bench_iis(cfg, quick=True, voice=models.voice, transcribe=lambda x, sr, ctx: "wrong words here",
                       body=models.body, thinker_fn=lambda config: {"summary": {"cb": 4.0, "tt": 0.9, "rt": 0.7}})
    d = result["dimensions"]
    assert d["cog"]["score"] == (20 * 4.0 + 50 * 0.9 + 50 * 0.7) / 3
    assert d["aco"]["status"] == "partial" and d["aco"]["inputs"]["wer"] > 0.5
    assert d["fac"]["status"] == "not measured" and d["vis"]["status"] == "not measured"
    assert d["som"]["inputs"]["pj"] == 0.0 and d["som"]["terms"] == {}  # the fake body never moves
    assert result["ours"]["iis"] is None  # 1/5 dimensions: no total
    paths = report.write(result, tmp_path / "iis.json") + report.write(perf, tmp_path / "perf.json")
    assert json.loads((tmp_path / "iis.json").read_text())["suite"] == "iis"
    assert "<svg" in (tmp_path / "iis.html").read_text() and len(paths) == 5
