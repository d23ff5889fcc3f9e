"""`mio serve` / `mio bench serve` are registered and the bench runs through the real WebSocket."""

from mio.bench.serve import bench_serve
from mio.cli import build_parser
from mio.server.cli import settings_from_args
from tests.fakes import fake_models


def test_serve_command_and_its_settings():
    args = build_parser().parse_args(["serve", "--port", "9001", "--max-sessions", "1",
                                      "--allow-origin", "http://app.example/", "--data-dir", "/tmp/x"])
    s = settings_from_args(args)
    assert (s.host, s.port, s.max_sessions) == ("127.0.0.1", 9001, 1)
    assert s.allowed_origins == ("http://app.example",) and s.data_dir == "/tmp/x"
    assert build_parser().parse_args(["bench", "serve", "--turns", "2"]).turns == 2


def test_bench_serve_measures_through_the_websocket():
    models = fake_models(reply="Hello there, friend. I am Mio! How are you today? " * 3)
    try:
        result = bench_serve(models.config, turns=1, models=models)
    finally:
        models.close()
    s = result["summary"]
    for key in ("message_to_first_audio_p50_s", "message_to_first_frame_p50_s", "sustained_fps",
                "av_drift_p95_s", "interrupt_latency_s", "typed_barge_in_latency_s", "disconnect_cleanup_s"):
        assert s[key] is not None and s[key] >= 0, key
    assert s["audio_after_interrupt"] == 0 and s["video_frames"] > 25
