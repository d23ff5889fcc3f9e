"""`mio serve` and `mio bench serve` (registered into the `mio` command by mio/cli.py's EXTENSIONS).

    mio serve                                  # http://127.0.0.1:8765
    mio serve --port 9000 --max-sessions 1
    mio serve --host 0.0.0.0 --allow-host mybox.lan --access-key "$KEY"   # on a network: use a key
    mio bench serve --sessions 2               # through the real WebSocket -> out/bench/serve.json
    mio llm-server --port 8080                 # the shared Thinker of several workers (docs/deploy.md)
    mio serve --port 8801 --worker-id w1 --set thinker.backend=openai --set thinker.url=http://127.0.0.1:8080/v1
"""

from __future__ import annotations

import argparse
import os
import sys

MAX_PORT = 65535
MIN_CTX = 512  # llama.cpp context below this cannot hold a persona prompt and one turn


def _say(msg: str) -> None:
    print(f"\033[2m[mio serve]\033[0m {msg}", file=sys.stderr, flush=True)


def _sessions(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-sessions takes a number or 'auto', not {value!r}") from None


def max_sessions(value: int | str) -> int:
    """`auto`: what `mio bench serve --sessions N` measured this machine holds (mio.server.scale)."""
    if value != "auto":
        return int(value)
    from mio.server.scale import measured_capacity

    cap, why = measured_capacity()
    _say(f"admission cap {cap}: {why}")
    return cap


def check_listen(host: str, port: int) -> None:
    """A one-line ConfigError unless this process can listen on host:port, checked before any model
    loads (a port in use or out of range would otherwise surface after a minute, as a traceback)."""
    import socket

    from mio.core.errors import ConfigError

    if not 1 <= port <= MAX_PORT:
        raise ConfigError(f"--port must be in 1-{MAX_PORT}, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise ConfigError(f"cannot listen on {host!r}: {e}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def settings_from_args(args: argparse.Namespace):
    from mio.server.app import ServeSettings

    return ServeSettings(host=args.host, port=args.port, max_sessions=max_sessions(args.max_sessions),
                         worker_id=args.worker_id,
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
    check_listen(settings.host, settings.port)
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
    from mio.cli import _write_bench, check_at_least, config_from_args
    from mio.core.errors import ConfigError
    from mio.server.scale import record_capacity

    check_at_least(args, sessions=1, turns=0, spoken_turns=0)
    if args.turns + (args.turns if args.spoken_turns is None else args.spoken_turns) < 1:
        raise ConfigError("give at least one turn (--turns or --spoken-turns)")
    result = bench_serve(config_from_args(args), turns=args.turns, browser=args.browser,
                         progress=_say, sessions=args.sessions, spoken_turns=args.spoken_turns,
                         compare_preemptive=args.compare_preemptive)
    _say(f"recorded what {args.sessions} session(s) held in {record_capacity(result)} (for --max-sessions auto)")
    return _write_bench(result, args.output)


def _llm_server(args: argparse.Namespace) -> int:
    """Exec llama.cpp's OpenAI-compatible server on the embedded model (as the Thinker serves it)."""
    from mio.cli import config_from_args
    from mio.core.errors import ConfigError
    from mio.server.scale import llm_server_command
    from mio.thinker.llm.llama import served_gguf

    cfg = config_from_args(args).thinker
    if args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    if args.n_ctx < MIN_CTX:
        raise ConfigError(f"--n-ctx must be at least {MIN_CTX} (a persona prompt and one turn), got {args.n_ctx}")
    check_listen(args.host, args.port)
    if cfg.model_path is None and cfg.weights == "q8_0":
        from mio.thinker.llm.llama import embedded_q8_0

        embedded_q8_0()  # re-encoded once into the cache, as a local Thinker would
    cmd = llm_server_command(served_gguf(cfg), args.host, args.port, args.threads, args.n_ctx)
    _say(" ".join(cmd))
    os.execv(cmd[0], cmd)
    return 0


def register(sub, bench_sub, common) -> None:
    s = sub.add_parser("serve", parents=[common], help="talk to the character in the browser (web app + engine stream)")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--max-sessions", type=_sessions, default="auto",
                   help="live sessions at once, more get a 'busy' refusal; 'auto' (default): what "
                        "`mio bench serve --sessions N` measured this machine holds, else 2")
    s.add_argument("--worker-id", metavar="NAME",
                   help="behind a sticky reverse proxy: this worker's name, set in the mio_worker cookie "
                        "(docs/deploy.md)")
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

    m = sub.add_parser("llm-server", parents=[common],
                       help="llama.cpp's OpenAI-compatible server on the embedded LLM, for several workers "
                            "(thinker.backend=openai; docs/deploy.md)")
    m.add_argument("--host", default="127.0.0.1")
    m.add_argument("--port", type=int, default=8080)
    m.add_argument("--threads", type=int, default=2, help="llama.cpp threads (decode and pre-fill)")
    m.add_argument("--n-ctx", type=int, default=4096, help="context size, shared by the requests in turn")
    m.set_defaults(func=_llm_server)

    b = bench_sub.add_parser("serve", parents=[common],
                             help="latency, fps, A/V drift and barge-in through the real WebSocket")
    b.add_argument("--turns", type=int, default=4, help="typed turns per session")
    b.add_argument("--spoken-turns", type=int, default=None,
                   help="spoken turns per session (the user's lines in piper's voice over the microphone; default: --turns)")
    b.add_argument("--sessions", type=int, default=1, help="clients talking at the same time, each its own session")
    b.add_argument("--browser", action="store_true",
                   help="also drive the page in Chromium and measure drift where it is drawn")
    b.add_argument("--compare-preemptive", action="store_true",
                   help="A/B in one run: spoken turns alternate preemptive generation on and off")
    b.add_argument("-o", "--output", default="out/bench/serve.json")
    b.set_defaults(func=_bench_serve)
