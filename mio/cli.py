"""The `mio` command: demo | say | chat | bench | info.

    mio demo                       # scripted exchange with the default character -> out/demo.mp4
    mio say "Hello there" -o hi.mp4
    mio chat --record talk.mp4
    mio bench pipeline             # latency / real-time factors -> out/bench/pipeline.json
    mio info                       # config, backends, where things are

Every command takes --config FILE and --set section.key=value overrides, e.g.
`--set talker.backend=piper --set render.camera=upper_body`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import os
import sys
import time

from mio.core import atomic
from mio.core.errors import InputError, MioError
from mio.runtime.transports.mp4 import check_output

# Each extension module has `register(sub, bench_sub, common)`; missing ones are skipped.
EXTENSIONS = (
    "mio.thinker.cli",
    "mio.server.cli",
    "mio.bench.cli",
    "mio.train.cli",  # mio train <module>
    "mio.talker.codec.cli",  # mio codec encode|decode, mio bench codec
    "mio.talker.tts.cli",  # mio tts, mio bench tts
    "mio.talker.voices.cli",  # mio voices, mio bench voices
    "mio.face.unils.cli",  # mio face track|animate, mio bench face
    "mio.body.flood.cli",  # mio body generate, mio bench body
    "mio.render.cli",  # mio render, mio export, mio bench render
    "mio.thinker.evolve.cli",  # mio evolve collect|rewards|train|eval
)

DEMO_USER_LINES = (
    "Good evening, Captain Nemo! Who are you?",
    "What is it like to live under the sea?",
)


def _say(msg: str) -> None:
    print(f"\033[2m[mio]\033[0m {msg}", file=sys.stderr, flush=True)


def config_from_args(args: argparse.Namespace):
    """The MioConfig for a command: defaults, then --config FILE, then --character and --set."""
    return _config(args)


def _config(args: argparse.Namespace):
    from mio.core.config import load_config

    overrides = list(args.set or [])
    if getattr(args, "character", None):
        overrides.append(f"character={args.character}")
    return load_config(args.config, overrides)


def _models(cfg, *, asr: bool = False):
    from mio.runtime.session import Models

    t0 = time.perf_counter()
    models = Models(cfg, asr=asr, progress=_say)
    _say(f"models ready in {time.perf_counter() - t0:.1f} s ({', '.join(f'{k} {v:.1f}s' for k, v in models.load_times.items())})")
    return models


def _print_timings(conv, wall: float) -> dict:
    summary = conv.session.stats.summary()
    print("\nper-stage timings (wall time; RTF = compute time / media time):")
    for name, st in summary["stages"].items():
        rtf = f"  RTF {st['rtf']:.3f}" if st["rtf"] is not None else ""
        print(f"  {name:<22} calls {st['calls']:>5}  median {st['median_ms']:>9.2f} ms{rtf}")
    for i, t in enumerate(conv.turns, 1):
        ttfa = f"{t.ttfa:.2f} s" if t.ttfa is not None else "-"
        ttfv = f"{t.ttfv:.2f} s" if t.ttfv is not None else "-"
        print(f"  turn {i}: first audio after {ttfa}, first video frame after {ttfv}")
    print(f"  total wall time {wall:.1f} s")
    return summary


async def _demo(args: argparse.Namespace) -> int:
    from mio.runtime.offline import OfflineConversation

    cfg = _config(args)
    out = check_output(args.output)
    for line in args.lines or ():
        _check_text(line, cfg)
    models = _models(cfg, asr=not args.typed)
    user_voice = None
    if not args.typed:
        from mio.core import registry
        from mio.core.config import TalkerConfig

        _say("loading the user's voice (piper, joe) ...")
        user_voice = registry.create("talker", "piper", TalkerConfig(backend="piper"))
    conv = OfflineConversation(models, output=str(out),
                               on_clause=lambda c: print(f"  {models.character.name}: {c.text}"
                                                         f"   \033[2m[{c.emotion.label}, {c.gesture or '-'}]\033[0m"))
    t0 = time.perf_counter()
    saved = False
    try:
        await conv.start()
        for line in args.lines or DEMO_USER_LINES:
            if user_voice is None:
                print(f"you (typed): {line}")
                await conv.say_text(line)
            else:
                speech = user_voice.synthesize(line)
                print(f"you (spoken): {line}")
                res = await conv.say_audio(speech.samples, speech.sample_rate)
                print(f"  (heard: {res.user!r})")
        _say(f"writing {out} ...")
        await conv.close()
        saved = True
    finally:
        if not saved:  # an error or a signal: the real error propagates, no half-written video
            await conv.close(save=False)
        models.close()
    wall = time.perf_counter() - t0
    summary = _print_timings(conv, wall)
    timings_path = out.with_suffix(".timings.json")
    atomic.write_text(timings_path, json.dumps({"turns": [t.__dict__ for t in conv.turns], **summary}, indent=2))
    print(f"\nwrote {out} ({conv.recorder.duration:.1f} s of video) and {timings_path}")
    return 0 if not conv.session.errors else 1


async def _say_cmd(args: argparse.Namespace) -> int:
    from mio.runtime.offline import OfflineConversation

    cfg = _config(args)
    check_output(args.output)
    _check_text(args.text, cfg)  # before loading anything: a bad input costs nothing
    models = _models(cfg)
    conv = OfflineConversation(models, output=args.output,
                               on_clause=lambda c: print(f"{models.character.name}: {c.text}"))
    t0 = time.perf_counter()
    saved = False
    try:
        await conv.start()
        await conv.say_text(args.text)
        await conv.close()
        saved = True
    finally:
        if not saved:  # an error or a signal: the real error propagates, no half-written video
            await conv.close(save=False)
        models.close()
    if args.timings:
        _print_timings(conv, time.perf_counter() - t0)
    print(f"wrote {args.output}")
    for e in conv.session.errors:
        print(f"error: {e}", file=sys.stderr)
    return 0 if not conv.session.errors else 1


async def _chat(args: argparse.Namespace) -> int:
    from mio.runtime.offline import OfflineConversation

    cfg = _config(args)
    if args.record:
        check_output(args.record)
    models = _models(cfg)
    name = models.character.name
    # --record streams the conversation to disk as it goes; without it nothing is kept
    conv = OfflineConversation(models, output=args.record, keep=False,
                               on_clause=lambda c: print(f"{name}: {c.text}", flush=True))
    loop = asyncio.get_running_loop()
    saved = False
    try:
        await conv.start()
        print(f"{name}: {models.character.greeting}\n(type a message; /quit or Ctrl-D to leave)")
        while True:
            line = await loop.run_in_executor(None, _read_line)
            if line is None or line.strip() in ("/quit", "/exit"):
                break
            if not line.strip():
                continue
            try:
                await conv.say_text(line)
            except MioError as e:
                print(f"error: {e}", file=sys.stderr)
        await conv.close()  # Ctrl-D or /quit: the recording is complete
        saved = True
    finally:
        if not saved:
            await conv.close(save=False)
        models.close()
    if args.record:
        print(f"wrote {args.record}")
    return 0


def _read_line() -> str | None:
    try:
        line = input("you: ")
    except EOFError:
        return None
    if not sys.stdin.isatty():  # piped input is not echoed: keep the transcript readable
        print(line)
    return line


def _check_text(text: str, cfg) -> str:
    """The user's line as the Thinker will check it (mio.thinker.Thinker.check_input), before any
    model is loaded."""
    text = (text or "").strip()
    if not text:
        raise InputError("the text is empty; say something, e.g. mio say \"Hello, who are you?\"")
    limit = cfg.thinker.max_input_chars
    if len(text) > limit:
        raise InputError(f"the text has {len(text)} characters; the limit is {limit} (thinker.max_input_chars)")
    return text


def check_at_least(args: argparse.Namespace, **minimums: int) -> None:
    """A one-line InputError for a count option below its minimum (`--turns 0`, `--frames -1`),
    before anything loads. Options left at None are not checked."""
    for name, low in minimums.items():
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise InputError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")


def _write_bench(result: dict, output: str) -> int:
    out = atomic.write_text(output, json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {out}")
    return 0


async def _bench_pipeline(args: argparse.Namespace) -> int:
    from mio.bench.pipeline import bench_pipeline, per_turn_markdown

    check_at_least(args, turns=1, sessions=1)
    result = await bench_pipeline(_config(args), turns=args.turns, progress=_say, sessions=args.sessions,
                                  compare_untrimmed=args.compare_untrimmed,
                                  compare_whole_clauses=args.compare_whole_clauses)
    print(per_turn_markdown(result))
    return _write_bench(result, args.output)


def _info(args: argparse.Namespace) -> int:
    from mio.core import registry
    from mio.core.config import to_dict

    cfg = _config(args)
    print(json.dumps({"config": to_dict(cfg),
                      "backends": {m: registry.names(m) for m in ("thinker", "talker", "face", "body", "render")}},
                     indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="YAML/JSON file with config overrides")
    common.add_argument("--set", metavar="KEY=VALUE", action="append",
                        help="override one setting, e.g. --set talker.backend=piper (repeatable)")
    common.add_argument("--character", help="character pack: a folder under stories/ or a path")

    p = argparse.ArgumentParser(prog="mio", description="Mio: an interactive digital human that runs offline on a CPU.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", parents=[common], help="a short scripted exchange rendered to out/demo.mp4")
    d.add_argument("-o", "--output", default="out/demo.mp4")
    d.add_argument("--typed", action="store_true", help="type the user's lines instead of speaking them")
    d.add_argument("--line", dest="lines", action="append", help="a user line (repeatable; replaces the script)")
    d.set_defaults(func=_demo)

    s = sub.add_parser("say", parents=[common], help="the character answers TEXT, rendered to an MP4")
    s.add_argument("text")
    s.add_argument("-o", "--output", default="out/say.mp4")
    s.add_argument("--timings", action="store_true", help="print per-stage timings")
    s.set_defaults(func=_say_cmd)

    c = sub.add_parser("chat", parents=[common], help="talk with the character in the terminal")
    c.add_argument("--record", metavar="FILE.mp4", help="record the conversation as video")
    c.set_defaults(func=_chat)

    b = sub.add_parser("bench", parents=[common], help="benchmarks that write JSON")
    bsub = b.add_subparsers(dest="suite", required=True)
    bp = bsub.add_parser("pipeline", parents=[common], help="TTFA, first video frame, per-stage RTF (live clock)")
    bp.add_argument("--turns", type=int, default=6)
    bp.add_argument("--sessions", type=int, default=3,
                    help="fresh sessions in a row; P50/P95 per turn index are over these")
    bp.add_argument("--compare-untrimmed", action="store_true",
                    help="interleave sessions whose voice chunks keep their silences (the old behaviour)")
    bp.add_argument("--compare-whole-clauses", action="store_true",
                    help="interleave sessions that synthesise each clause whole (no first piece)")
    bp.add_argument("-o", "--output", default="out/bench/pipeline.json")
    bp.set_defaults(func=_bench_pipeline)

    i = sub.add_parser("info", parents=[common], help="show the resolved config and available backends")
    i.set_defaults(func=_info)

    # Module-owned commands: each of these modules, when present, defines
    # `register(sub, bench_sub, common)` and adds its own subcommands / bench suites.
    for name in EXTENSIONS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # its parent package is not there
            found = False
        if found:
            importlib.import_module(name).register(sub, bsub, common)
    return p


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) arrived: unwind like Ctrl-C so every `finally` runs (a partial recording
    is deleted, the render process and its shared memory are released) instead of dying mid-write."""


def _on_signal(signum: int, _frame) -> None:
    raise Terminated(signum)


def _error_line(e: BaseException) -> str:
    """One line for an error that reached the top: what was wrong, never a traceback."""
    if isinstance(e, OSError) and e.filename is not None:  # a bad path the user gave
        return f"cannot use {e.filename}: {e.strerror or e}"
    text = " ".join(str(e).split()) or type(e).__name__
    return text if isinstance(e, MioError) else f"{type(e).__name__}: {text}"


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit codes: 0 done, 1 the command ran but reported errors, 2 bad input
    (a one-line `mio: error: ...`), 3 an internal error (one line; MIO_TRACEBACK=1 shows where),
    130 Ctrl-C, 143 SIGTERM."""
    import signal

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread (tests calling main() from a worker)
            pass
    try:
        if args.command == "bench" and getattr(args, "output", None):
            # a benchmark can run for an hour: a results path that cannot be written is said first
            check_output(args.output, {".json": "benchmark results"})
        result = args.func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except (MioError, OSError, UnicodeDecodeError) as e:
        # Mio's own errors name the input; an OSError here is a path the user gave (missing,
        # a folder, no permission, disk full) and UnicodeDecodeError a binary file given as text.
        print(f"mio: error: {_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Terminated:
        print("mio: stopped by a signal (partial outputs deleted, resources released)", file=sys.stderr)
        return 143
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if os.environ.get("MIO_TRACEBACK"):
            raise
        print(f"mio: internal error: {_error_line(e)} (a bug: please report it; MIO_TRACEBACK=1 shows where)",
              file=sys.stderr)
        return 3
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
