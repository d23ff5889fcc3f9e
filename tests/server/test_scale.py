"""Scale-out pieces that need no second machine: the sticky cookie, the nginx config, the measured cap."""

from __future__ import annotations

import httpx

from mio.server import scale
from mio.server.background import BackgroundServer
from tests.fakes import fake_models


def test_a_worker_names_itself_in_the_sticky_cookie(tmp_path):
    models = fake_models()
    try:
        with BackgroundServer(models, data_dir=str(tmp_path), worker_id="w7") as srv:
            r = httpx.post(srv.url + "/api/session", json={})
            assert r.status_code == 200 and r.cookies.get(scale.STICKY_COOKIE) == "w7"
        with BackgroundServer(models, data_dir=str(tmp_path)) as srv:  # a lone server sets no cookie
            assert scale.STICKY_COOKIE not in httpx.post(srv.url + "/api/session", json={}).cookies
    finally:
        models.close()


def test_nginx_config_routes_the_cookie_and_balances_new_visitors():
    conf = scale.nginx_config({"w1": "10.0.0.1:8801", "w2": "10.0.0.2:8801"}, "0.0.0.0:80", "/srv/nginx")
    assert "map $cookie_mio_worker $mio_backend" in conf
    assert "w1 10.0.0.1:8801;" in conf and "w2 10.0.0.2:8801;" in conf and "default mio_pool;" in conf
    assert "least_conn;" in conf and "proxy_next_upstream error timeout http_503 non_idempotent;" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf and "listen 0.0.0.0:80;" in conf


def test_admission_cap_is_what_was_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("MIO_CACHE", str(tmp_path))
    cap, why = scale.measured_capacity()
    assert cap == scale.FALLBACK_CAP and "not measured" in why

    def run(n: int, fps: float, offset: float = 0.01, dropped: int = 0) -> dict:
        return {"summary": {"sessions": n, "fps_while_speaking_min": fps, "av_offset_p95_s_max": offset,
                            "audio_dropped": dropped}}

    scale.record_capacity(run(1, 25.0))
    scale.record_capacity(run(2, 21.0))  # two sessions skipped frames: not held
    assert scale.measured_capacity()[0] == 1
    scale.record_capacity(run(2, 24.5))
    scale.record_capacity(run(3, 24.2, offset=0.08))  # three drifted: not held
    assert scale.measured_capacity()[0] == 2
    scale.record_capacity(run(1, 19.0))  # even one session cannot hold 25 fps: still admitted (it degrades)
    assert scale.measured_capacity()[0] == 1
