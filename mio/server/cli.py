"""`mio serve` and `mio bench serve` (registered into the `mio` command by mio/cli.py's EXTENSIONS).

    mio serve                                  # http://127.0.0.1:8765
    mio serve --port 9000 --max-sessions 1
    mio serve --host 0.0.0.0 --allow-host mybox.lan --access-key "$KEY"   # on a network: use a key
    mio bench serve                            # through the real WebSocket -> out/bench/serve.json
"""

from __future__ import annotations

import argparse
import os
import sys


def _say(msg: str) -> None:
    print(f"\033[2m[mio serve]\033[0m {msg}", file=sys.stderr, flush=True)


def settings_from_args(args: argparse.Namespace):
    from mio.server.app import ServeSettings

    return ServeSettings(host=args.host, port=args.port, max_sessions=args.max_sessions,
                         allowed_origins=tuple(o.rstrip("/") for o in args.allow_origin or ()),
                         allowed_hosts=tuple(args.allow_host or ()),
                         access_key=args.access_key or os.environ.get("MIO_ACCESS_KEY") or None,
                         data_dir=args.data_dir, idle_timeout_s=args.idle_timeout,
                         max_sessions_per_client=args.max_sessions_per_client,
                         max_connections_per_ip=args.max_connections_per_ip)


def _serve(args: argparse.Namespace) -> int:
    from mio.cli import _models, config_from_args
    from mio.core.errors import ConfigError
    from mio.server.app import run

    settings = settings_from_args(args)
    if settings.max_sessions < 1:
        raise ConfigError("--max-sessions must be at least 1")
    if not settings.idle_timeout_s > settings.idle_warning_s:
        raise ConfigError(f"--idle-timeout must be more than {settings.idle_warning_s:.0f} s (the warning comes that long before)")
    if settings.max_sessions_per_client < 0 or settings.max_connections_per_ip < 0:
        raise ConfigError("--max-sessions-per-client and --max-connections-per-ip must be 0 or more")
    wide = settings.host not in ("127.0.0.1", "localhost", "::1")
    if wide and settings.access_key is None:
        _say(f"warning: listening on {settings.host} without --access-key: anyone who reaches this port can talk")
    models = _models(config_from_args(args), asr=not args.no_asr)
    _say(f"open http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}/ "
         f"(up to {settings.max_sessions} sessions; data in {settings.data_dir})")
    try:
        run(models, settings)
    finally:
        models.close()
    return 0


def _bench_serve(args: argparse.Namespace) -> int:
    from mio.bench.serve import bench_serve
    from mio.cli import _write_bench, config_from_args

    return _write_bench(bench_serve(config_from_args(args), turns=args.turns, browser=args.browser,
                                    progress=_say), args.output)


def register(sub, bench_sub, common) -> None:
    s = sub.add_parser("serve", parents=[common], help="talk to the character in the browser (web app + engine stream)")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--max-sessions", type=int, default=2, help="live sessions at once; more get a 'busy' refusal")
    s.add_argument("--allow-origin", action="append", metavar="URL",
                   help="another web origin allowed to open sessions (repeatable)")
    s.add_argument("--allow-host", action="append", metavar="NAME",
                   help="a Host name this server answers to besides localhost (repeatable)")
    s.add_argument("--access-key", help="require this key to open a session (or set MIO_ACCESS_KEY); "
                                        "the page reads it from #key=... in its URL")
    s.add_argument("--data-dir", default="out/serve", help="where sessions and ratings are stored")
    s.add_argument("--idle-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="close a session after this long without the user typing or speaking (warned 60 s before)")
    s.add_argument("--max-sessions-per-client", type=int, default=0, metavar="N",
                   help="live sessions one address may hold (default 0: no cap below --max-sessions)")
    s.add_argument("--max-connections-per-ip", type=int, default=64, metavar="N",
                   help="open sockets per address (raise it behind a reverse proxy; 0: no cap)")
    s.add_argument("--no-asr", action="store_true", help="do not load speech recognition (no voice input)")
    s.set_defaults(func=_serve)

    b = bench_sub.add_parser("serve", parents=[common],
                             help="latency, fps, A/V drift and barge-in through the real WebSocket")
    b.add_argument("--turns", type=int, default=4)
    b.add_argument("--browser", action="store_true",
                   help="also drive the page in Chromium and measure drift where it is drawn")
    b.add_argument("-o", "--output", default="out/bench/serve.json")
    b.set_defaults(func=_bench_serve)
