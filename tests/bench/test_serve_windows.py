"""`mio bench serve` counts frames "while speaking" only where the avatar is heard."""

from types import SimpleNamespace

from mio.bench.serve import _speech_windows
from mio.bench.serve_client import Arrival


def test_speech_stops_at_a_barge_in_and_where_the_video_ends():
    log = [
        Arrival(1.0, "audio", pts=2.0, duration=1.0),   # played whole
        Arrival(1.1, "audio", pts=3.0, duration=3.0),   # scheduled, then cut by the barge-in at 4.0
        Arrival(1.5, "interrupt", pts=4.0),
        Arrival(2.0, "audio", pts=5.0, duration=1.0),   # the next reply, after the barge-in: whole
        Arrival(2.5, "audio", pts=9.0, duration=2.0),   # the client leaves at video pts 9.96
        *[Arrival(3.0 + k / 25, "video", pts=k / 25, turn=k) for k in range(250)],
    ]
    assert _speech_windows(SimpleNamespace(log=log)) == [(2.0, 3.0), (3.0, 4.0), (5.0, 6.0), (9.0, 10.0)]
