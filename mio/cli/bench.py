"""`mio bench iis`, `mio bench perf` and `mio bench asr` (registered into `mio bench` by mio.cli)."""

from __future__ import annotations

import argparse
import asyncio

from mio.cli.common import config_from_args, say, write_bench
from mio.core.errors import ConfigError


def _iis(args: argparse.Namespace) -> int:
    from mio.bench import report
    from mio.bench.iis import bench_iis
    from mio.metrics.iis import DIMENSIONS

    utmos = None
    if args.utmos:  # loaded now: a bad file is said before the suites run, not after them
        from mio.metrics.networks import load_onnx
        from mio.metrics.talker import onnx_mos

        utmos = onnx_mos(load_onnx(args.utmos, "UTMOS (--utmos)", 1))
    result = bench_iis(config_from_args(args), quick=args.quick, progress=say, utmos_model=utmos)
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

    result = asyncio.run(bench_perf(config_from_args(args), quick=args.quick, progress=say,
                                    skip_pipeline=args.skip_pipeline))
    paths = report.write(result, args.output)
    print(report.perf_markdown(result))
    for path in paths:
        print(f"wrote {path}")
    return 0


def _asr(args: argparse.Namespace) -> int:
    from mio.bench.asr import bench_asr

    voices = tuple((v.partition(":")[0], v.partition(":")[2] or None) for v in args.voices)
    if args.window_s is not None and not 1.0 <= args.window_s <= 30.0:
        raise ConfigError(f"--window-s must be 1-30 seconds, got {args.window_s}")
    return write_bench(bench_asr(config_from_args(args), voices=voices, threads=args.threads, progress=say,
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
                             help="every budget of docs/architecture.md §7 in one run -> out/bench/perf.{json,md}")
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
