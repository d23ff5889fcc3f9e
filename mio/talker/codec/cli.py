"""`mio codec encode|decode` and `mio bench codec` (registered by mio/cli.py's EXTENSIONS).

    mio codec encode speech.wav -o codes.npz      # any rate, any channels: resampled to 24 kHz mono
    mio codec decode codes.npz -o speech.wav      # 24 kHz, trimmed to the original length
    mio bench codec                               # held-out STOI/PESQ/SIM + speed beside Mimi
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from mio.core import atomic
from mio.core.atomic import atomic_output
from mio.core.errors import InputError
from mio.runtime.transports.mp4 import check_output


def _say(msg: str) -> None:
    print(f"\033[2m[mio codec]\033[0m {msg}", file=sys.stderr, flush=True)


def _encode(args: argparse.Namespace) -> int:
    from mio.talker.codec.data import SAMPLE_RATE, load_audio
    from mio.talker.codec.stream import encode_array, load_codec

    out = check_output(args.output, {".npz": "the codes"})
    x = load_audio(args.input, SAMPLE_RATE)  # checked before the model loads
    codec = load_codec(args.checkpoint, threads=args.threads)
    if codec.cfg.sample_rate != SAMPLE_RATE:  # a checkpoint trained at another rate
        x = load_audio(args.input, codec.cfg.sample_rate)
    codes = encode_array(codec, x)
    with atomic_output(out) as tmp, tmp.open("wb") as f:
        np.savez(f, codes=codes, n_samples=np.int64(len(x)), sample_rate=np.int64(codec.cfg.sample_rate),
                 frame_rate=np.float64(codec.cfg.frame_rate))
    print(f"{args.input}: {len(x) / codec.cfg.sample_rate:.2f} s -> {codes.shape[1]} frames x {codes.shape[0]} "
          f"codebooks ({codec.cfg.bitrate:.0f} bit/s) -> {out}")
    return 0


def _decode(args: argparse.Namespace) -> int:
    import soundfile as sf

    from mio.talker.codec.stream import decode_array, load_codec

    path = Path(args.input)
    if not path.is_file():
        raise InputError(f"codes file {path} does not exist")
    try:
        with np.load(path) as z:
            if "codes" not in z:
                raise InputError(f"{path} has no 'codes' array (write it with `mio codec encode`)")
            codes = z["codes"]
            n = z["n_samples"] if "n_samples" in z else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"cannot read {path} as an .npz of codes ({e})") from None
    out = check_output(args.output, {".wav": "24 kHz speech"})
    codec = load_codec(args.checkpoint, threads=args.threads)
    hop = codec.cfg.hop
    if n is not None:  # the original length: it must fit the frames, or the file was cut or edited
        if n.shape != () or n.dtype.kind not in "iu" or not 0 < int(n) <= codes.shape[-1] * hop:
            raise InputError(f"{path}: n_samples {n.tolist()!r} does not fit {codes.shape[-1]} frames "
                             f"(at most {codes.shape[-1] * hop} samples); the file is damaged")
        n = int(n)
    y = decode_array(codec, codes)
    if n is not None:
        y = y[:n]
    with atomic_output(out) as tmp:
        sf.write(tmp, np.clip(y, -1, 1), codec.cfg.sample_rate, subtype="PCM_16", format="WAV")
    print(f"{path}: {codes.shape[1]} frames -> {len(y) / codec.cfg.sample_rate:.2f} s at {codec.cfg.sample_rate} Hz -> {out}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from mio.cli import check_at_least
    from mio.talker.codec.bench import bench_codec, markdown

    check_at_least(args, utterances=1)
    result = bench_codec(args.checkpoint, corpus=args.corpus, utterances=args.utterances, quick=args.quick,
                         mimi=not args.no_mimi, threads=args.threads or 2,
                         out_dir=Path(args.output).parent, progress=_say)
    out = atomic.write_text(args.output, json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    atomic.write_text(out.with_suffix(".md"), md + "\n")
    print(md)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    ck = argparse.ArgumentParser(add_help=False)
    ck.add_argument("--checkpoint", metavar="DIR", help="codec checkpoint folder (default: the embedded one)")
    ck.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    c = sub.add_parser("codec", help="the Kodama audio tokenizer: wav <-> 12.5 Hz tokens (1 kbps)")
    csub = c.add_subparsers(dest="codec_command", metavar="COMMAND", required=True)
    e = csub.add_parser("encode", parents=[ck], help="speech file -> codes (.npz: codes (8, T) int16)")
    e.add_argument("input")
    e.add_argument("-o", "--output", required=True)
    e.set_defaults(func=_encode)
    d = csub.add_parser("decode", parents=[ck], help="codes (.npz) -> 24 kHz wav")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True)
    d.set_defaults(func=_decode)
    b = bench_sub.add_parser("codec", parents=[common, ck],
                             help="Kodama on held-out speech: STOI, PESQ, SIM, RTF, streaming ms/frame; "
                                  "Mimi's speed beside it -> out/bench/codec.{json,md}")
    b.add_argument("--corpus", default=None,
                   help="corpus whose 'test' split is used (default: out/codec-corpus if `mio train codec "
                        "--build-corpus` made it, else held-out voices rendered once into out/bench/codec-heldout)")
    b.add_argument("--utterances", type=int, default=24)
    b.add_argument("--quick", action="store_true", help="6 utterances, fewer frames")
    b.add_argument("--no-mimi", action="store_true", help="leave out the Mimi speed reference")
    b.add_argument("-o", "--output", default="out/bench/codec.json")
    b.set_defaults(func=_bench)
