"""`mio voices` and `mio bench voices` (registered into `mio` by mio.cli).

    mio voices                      # installed voices per backend, and each character's voice
    mio bench voices                # per character: F0, DNSMOS, WER, RTF, similarity -> out/bench/voices.json
"""

from __future__ import annotations

import argparse
import json

from mio.cli.common import config_from_args, say
from mio.core import atomic


def _list(args: argparse.Namespace) -> int:
    from mio.bench.voices import character_specs
    from mio.talker.voices.bank import available_voices

    for backend, names in available_voices().items():
        shown = ", ".join(names[:20]) + (f", ... ({len(names)})" if len(names) > 20 else "")
        print(f"{backend:8s} {shown or '(not installed)'}")
    print()
    for cid, (spec, _card) in character_specs().items():
        print(f"{cid:10s} {spec.describe() if spec else '(talker default)'}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from mio.bench.voices import bench_voices

    characters = [c for c in (args.characters or "").split(",") if c] or None
    result = bench_voices(config_from_args(args).talker, characters=characters, quick=args.quick,
                          survey=args.survey, full_dnsmos=not args.quick, progress=say)
    out = atomic.write_text(args.output, json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {out}")
    return 0


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    v = sub.add_parser("voices", parents=[common], help="installed voices per backend and each character's voice")
    v.set_defaults(func=_list)
    b = bench_sub.add_parser("voices", parents=[common],
                             help="each character's voice: median F0, DNSMOS, WER, RTF, first clause, speaker "
                                  "similarity -> out/bench/voices.json")
    b.add_argument("--characters", help="comma-separated character ids (default: every character)")
    b.add_argument("--quick", action="store_true", help="4 sentences, DNSMOS P.808 only")
    b.add_argument("--survey", action="store_true", help="also measure every raw offline engine found here")
    b.add_argument("-o", "--output", default="out/bench/voices.json")
    b.set_defaults(func=_bench)
