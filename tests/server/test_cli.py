"""`mio serve` / `mio bench serve` are registered and the bench runs through the real WebSocket."""

import numpy as np

from mio.bench.serve import bench_serve
from mio.cli import build_parser
from mio.cli.serve import settings_from_args
from tests.fakes import fake_models
from tests.server.conftest import FakeASR


def test_serve_command_and_its_settings():
    args = build_parser().parse_args(["serve", "--port", "9001", "--max-sessions", "1",
                                      "--allow-origin", "http://app.example/", "--data-dir", "/tmp/x"])
    s = settings_from_args(args)
    assert (s.host, s.port, s.max_sessions) == ("127.0.0.1", 9001, 1)
    assert s.allowed_origins == ("http://app.example",) and s.data_dir == "/tmp/x"
    assert build_parser().parse_args(["bench", "serve", "--turns", "2"]).turns == 2


class _ToneVoice:
    """The user's "voice" for the fake server: a tone the energy VAD hears as speech."""

    def synthesize(self, text, emotion=None):
        from mio.talker.base import Speech

        t = np.arange(int(0.9 * 16000)) / 16000
        return Speech((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)


def test_bench_serve_two_sessions_typed_and_spoken_turns_through_the_websocket():
    models = fake_models(reply="Hello there, friend. I am Mio! How are you today? " * 3)
    models.asr = FakeASR("what is the nautilus")
    try:
        result = bench_serve(models.config, turns=1, models=models, sessions=2, spoken_turns=1,
                             user_voice=_ToneVoice())
    finally:
        models.close()
    s = result["summary"]
    for key in ("typed_first_audio_p50_s", "typed_audible_p50_s", "spoken_audible_p50_s", "spoken_endpoint_p50_s",
                "fps_while_speaking_min", "frames_missing_while_speaking_pct_max", "av_offset_p95_s_max",
                "interrupt_latency_s", "typed_barge_in_latency_s", "voice_barge_in_latency_s",
                "disconnect_cleanup_s"):
        assert s[key] is not None and s[key] >= 0, key
    assert s["sessions"] == 2 and len(result["per_session"]) == 2
    assert s["audio_after_interrupt"] == 0
    for sess in result["per_session"]:
        assert sess["spoken_turns_heard"] == "1/1" and sess["turns"]["spoken"][0]["heard"] == "what is the nautilus"
    # the spoken turn counts from the end of the user's speech: after the endpoint's hang-over
    assert s["spoken_audible_p50_s"] > models.config.asr.hangover_ms / 1000
