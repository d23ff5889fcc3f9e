"""`mio bench iis`, `mio bench perf` and `mio bench asr` (registered into `mio bench` by mio/cli.py's EXTENSIONS)."""

from __future__ import annotations

import argparse
import asyncio
import sys


def _say(msg: str) -> None:
    print(f"\033[2m[mio bench]\033[0m {msg}", file=sys.stderr, flush=True)


def _iis(args: argparse.Namespace) -> int:
    from mio.bench import report
    from mio.bench.iis import DIMENSIONS, bench_iis
    from mio.cli import config_from_args

    utmos = None
    if args.utmos:  # loaded now: a bad file is said before the suites run, not after them
        from mio.bench.metrics.talker import OnnxModel, _onnx_scalar
        from mio.core.errors import InputError

        try:
            utmos = _onnx_scalar(OnnxModel(args.utmos))
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            raise InputError(f"--utmos {args.utmos}: not a loadable ONNX model ({' '.join(str(e).split())[:200]})") from None
    result = bench_iis(config_from_args(args), quick=args.quick, progress=_say, utmos_model=utmos)
    paths = report.write(result, args.output)
    p = result["paper"]["76.0"]
    print(f"{'dimension':<6} {'paper Mio':>10} {'prev best':>10} {'ours':>8}  status")
    for k in DIMENSIONS:
        ours = result["ours"]["scores"][k]
        print(f"{k:<6} {p['mio'][k]:>10.2f} {p['previous_best'][k]:>10.2f} "
              f"{(f'{ours:.2f}' if ours is not None else 'n/m'):>8}  {result['dimensions'][k]['status']}")
    total = result["ours"]["iis"]
    print(f"{'IIS':<6} {p['mio_iis']:>10.2f} {p['previous_best_iis']:>10.2f} "
          f"{(f'{total:.2f}' if total is not None else 'n/m'):>8}")
    for path in paths:
        print(f"wrote {path}")
    return 0


def _perf(args: argparse.Namespace) -> int:
    from mio.bench import report
    from mio.bench.perf import bench_perf
    from mio.cli import config_from_args

    result = asyncio.run(bench_perf(config_from_args(args), quick=args.quick, progress=_say,
                                    skip_pipeline=args.skip_pipeline))
    paths = report.write(result, args.output)
    print(report.perf_markdown(result))
    for path in paths:
        print(f"wrote {path}")
    return 0


def _asr(args: argparse.Namespace) -> int:
    from mio.bench.asr import bench_asr
    from mio.cli import _write_bench, config_from_args

    voices = tuple((v.partition(":")[0], v.partition(":")[2] or None) for v in args.voices)
    if args.window_s is not None and not 1.0 <= args.window_s <= 30.0:
        from mio.core.errors import ConfigError

        raise ConfigError(f"--window-s must be 1-30 seconds, got {args.window_s}")
    return _write_bench(bench_asr(config_from_args(args), voices=voices, threads=args.threads, progress=_say,
                                  window_s=args.window_s), args.output)


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    i = bench_sub.add_parser("iis", parents=[common],
                             help="Interactive Intelligence Score (§7.7): every dimension we can measure, "
                                  "beside the paper's -> out/bench/iis.{json,md,html}")
    i.add_argument("--quick", action="store_true", help="a few utterances / a short motion script")
    i.add_argument("--utmos", metavar="FILE.onnx", help="UTMOS model file (waveform 16 kHz -> MOS)")
    i.add_argument("-o", "--output", default="out/bench/iis.json")
    i.set_defaults(func=_iis)
    p = bench_sub.add_parser("perf", parents=[common],
                             help="every budget of ARCHITECTURE.md §7 in one run -> out/bench/perf.{json,md}")
    p.add_argument("--quick", action="store_true", help="fewer frames and 2 live turns")
    p.add_argument("--skip-pipeline", action="store_true", help="leave out the live session (TTFA, fps, barge-in)")
    p.add_argument("-o", "--output", default="out/bench/perf.json")
    p.set_defaults(func=_perf)
    a = bench_sub.add_parser("asr", parents=[common],
                             help="spoken story names: WER, names heard, RTF of whisper with the story prompt "
                                  "-> out/bench/asr.json")
    a.add_argument("--voices", nargs="+", default=["hibari", "piper"], metavar="BACKEND[:VOICE]",
                   help="offline voices that speak the set (also: espeak)")
    a.add_argument("--threads", type=int, default=2, help="whisper's CPU threads")
    a.add_argument("--window-s", type=float, default=None, metavar="SECONDS",
                   help="whisper's encoder window (default: the utterance + 1 s, at least 12 s; 30 = whisper's full window)")
    a.add_argument("-o", "--output", default="out/bench/asr.json")
    a.set_defaults(func=_asr)
