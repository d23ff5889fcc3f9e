"""`mio train <module>`: one sub-command per trainable model, each running the module's own
`train_command` (single process, or under `torchrun --nproc_per_node N -m mio.cli train ...`).

    mio train codec  --corpus out/codec-corpus --build-corpus      # mio/talker/codec/train.py
    mio train tts    --preset small                               # mio/talker/tts/train.py
    mio train face   --stage all --generate 72                    # mio/face/unils/train.py
    mio train body   --stage data|vae|dit|eval                    # mio/body/flood/train.py, eval.py
    mio train render --stage face|multiview|joint                 # mio/render/avatardit/train.py
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from mio.core.errors import CheckpointError

RAW = argparse.RawDescriptionHelpFormatter


def _then_leave_the_group(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A training command that leaves the torch.distributed process group when it ends (under
    torchrun): a process that exits with the gloo group still up can abort in gloo's teardown
    ("terminate called without an active exception"), failing a run whose training finished."""
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        finally:
            from mio.train import shutdown_distributed

            shutdown_distributed()

    return run


def _codec(tsub: argparse._SubParsersAction) -> None:
    from mio.talker.codec import train as t
    from mio.talker.codec.config import PRESETS
    from mio.talker.codec.losses import LossWeights
    from mio.talker.codec.quant import QUANTIZERS

    p = tsub.add_parser("codec", help="the Kodama audio tokenizer (§2.1) on a folder of wav files",
                        description=t.__doc__, formatter_class=RAW)
    p.add_argument("--corpus", default="out/codec-corpus", help="folder of wavs (LibriTTS layout or any tree)")
    p.add_argument("--build-corpus", type=int, nargs="?", const=1500, default=0, metavar="N",
                   help="first build a corpus of N training utterances from the embedded voices if absent")
    p.add_argument("--out", default="out/train/codec",
                   help="checkpoint folder (rerun to resume; a resumed run keeps its own model settings)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="embedded")
    p.add_argument("--teacher", default="whisper", help="'whisper' or a local W2v-BERT 2.0 folder")
    p.add_argument("--steps", type=int, default=t.CodecTrainConfig.steps)
    p.add_argument("--batch", type=int, default=t.CodecTrainConfig.batch)
    p.add_argument("--segment-frames", type=int, default=t.CodecTrainConfig.segment_frames)
    p.add_argument("--lr", type=float, default=t.CodecTrainConfig.lr)
    p.add_argument("--gan-start", type=int, default=None, help="step the discriminators join (default 85%% of steps)")
    p.add_argument("--decay-start", type=int, default=None,
                   help="step from which the learning rate decays (cosine) to 2%% at --steps; default: constant")
    p.add_argument("--mel-floor", type=float, default=t.CodecTrainConfig.mel_floor,
                   help="power floor inside L_mel's log (1e-3 ignores detail ~60 dB below speech; "
                        "the first embedded stage used 1e-5)")
    p.add_argument("--mel-weight", type=float, default=None,
                   help=f"lambda of L_mel in Eq. 2 (default {LossWeights.mel}; raise it beside the GAN to keep "
                        "intelligibility)")
    p.add_argument("--init-from", metavar="DIR", help="warm start from a trained codec (its widths; fresh optimizer)")
    p.add_argument("--quantizer", choices=QUANTIZERS, default=None,
                   help="RVQ mode (default: the preset's, or --init-from's); 'residual' with a cosine --init-from "
                        "carries that checkpoint over to the residual RVQ")
    p.add_argument("--vocos-layers", type=int, default=None,
                   help="decoder depth; with --init-from, blocks beyond the source's start as identities")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--export", metavar="DIR", help="copy the final checkpoint here (e.g. mio/talker/codec/embedded)")
    p.set_defaults(func=_then_leave_the_group(t.train_command))


def _tts(tsub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from mio.talker.tts import train as t
    from mio.talker.tts.curation import CurationConfig
    from mio.talker.tts.data import DEFAULT_CORPUS

    p = tsub.add_parser("tts", parents=[common], help="Kodama-TTS (paper §2.2) on a LibriTTS-style corpus",
                        description="Curate + encode the corpus (resumable), then train Kodama-TTS with "
                                    "L_TTS. Rerun the same command to resume.")
    p.add_argument("--preset", default="small", help="tiny | small (embedded) | smollm2 | paper (Qwen3-1.7B)")
    p.add_argument("--backbone-path", help="local Qwen3 checkpoint directory for --preset paper")
    p.add_argument("--data", default=str(DEFAULT_CORPUS), help="corpus folder (LibriTTS layout or manifest.jsonl)")
    p.add_argument("--data-cache", help="prepared-data folder (default OUT/data)")
    p.add_argument("--codec", help="Kodama codec checkpoint (default: the embedded one)")
    p.add_argument("--out", default="out/train/tts", help="checkpoint folder")
    p.add_argument("--init", help="start from this Kodama-TTS checkpoint (fine-tuning)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--prompt-prob", type=float, default=0.5, help="share of in-context clone examples")
    p.add_argument("--min-dnsmos", type=float, default=CurationConfig.min_dnsmos)
    p.add_argument("--min-consistency", type=float, default=CurationConfig.min_consistency)
    p.add_argument("--limit", type=int, help="use only the first N corpus utterances")
    p.add_argument("--voice-speaker", default="hibari-heart", help="training speaker used as the default voice")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--prepare-only", action="store_true", help="stop after data preparation")
    p.add_argument("--export", metavar="DIR", help="then write a float16 copy for shipping (with its codec) to DIR")
    p.set_defaults(func=_then_leave_the_group(t.train_command))


def _face(tsub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from mio.face.unils import train as t

    p = tsub.add_parser("face", parents=[common], help="UniLS face animator: --stage vq|free|audio|e2e",
                        description=t.__doc__, formatter_class=RAW)
    p.add_argument("--stage", choices=("vq", "free", "audio", "e2e", "all"), required=True,
                   help="vq: VQ-VAE; free: stage 1 (audio-free); audio: stage 2 (LoRA + cross-attention); "
                        "e2e: single-stage ablation; all: the embedded recipe, every stage into --out/STAGE")
    p.add_argument("--data", default="out/face/dyadic", help="folder of conversations and/or face tracks")
    p.add_argument("--out", default=None, help="checkpoint folder (default out/face/STAGE)")
    p.add_argument("--init", default=None, help="checkpoint of the previous stage")
    p.add_argument("--preset", choices=("tiny", "paper"), default="tiny")
    p.add_argument("--layout", choices=("arkit52", "flame112"), default="arkit52")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--generate", type=int, default=0, metavar="N",
                   help="first write N synthetic dyadic conversations into --data (kept ones are reused)")
    p.set_defaults(func=_then_leave_the_group(t.train_command))


def _body_command(args: argparse.Namespace) -> int:
    out = args.out or f"out/body/{args.stage}"
    if args.stage == "data":
        from mio.body.data import build_library

        build_library(out, args.n_train, args.n_test, seed=args.seed)
        print(f"motion library: {out}")
    elif args.stage == "vae":
        from mio.body.flood.train import train_vae

        train_vae(args.data, out, preset=args.preset, steps=args.steps or 2000, batch=args.batch,
                  lr=args.lr or 1e-3, seed=args.seed, limit=args.limit)
        print(f"VAE: {out}")
    elif args.stage == "dit":
        from mio.body.flood.train import train_dit

        if not Path(args.vae).is_dir():
            raise CheckpointError(f"no trained VAE at {args.vae}; run `mio train body --stage vae` first")
        train_dit(args.data, args.vae, out, preset=args.preset, variant=args.variant, steps=args.steps or 3000,
                  batch=args.batch, lr=args.lr or 3e-4, seed=args.seed, limit=args.limit)
        print(f"DiT: {out}")
    else:  # the T2M evaluator of `mio bench body`, trained on the same library
        from mio.body.flood.eval import train_evaluator

        train_evaluator(args.data, out, steps=args.steps or 1500, batch=args.batch, seed=args.seed, limit=args.limit)
        print(f"evaluator: {out}")
    return 0


def _body(tsub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from mio.body.flood import train as t

    p = tsub.add_parser("body", parents=[common], help="FloodDiffusion body animator (§4): data, VAE, DiT, evaluator",
                        description=t.__doc__, formatter_class=RAW)
    p.add_argument("--stage", choices=("data", "vae", "dit", "eval"), required=True)
    p.add_argument("--data", default="out/body/library", help="HumanML3D-layout folder (stage data writes it)")
    p.add_argument("--out", default=None, help="output folder (default out/body/<stage>)")
    p.add_argument("--vae", default="out/body/vae", help="trained VAE folder (stage dit)")
    p.add_argument("--preset", choices=("tiny", "small", "paper"), default="small")
    p.add_argument("--variant", choices=tuple(t.VARIANTS), default="flood", help="DiT ablation (stage dit)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use at most this many training clips")
    p.add_argument("--n-train", type=int, default=400, help="stage data: training sequences")
    p.add_argument("--n-test", type=int, default=60, help="stage data: held-out sequences")
    p.set_defaults(func=_then_leave_the_group(_body_command))


def _render(tsub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from mio.render.avatardit import train as t
    from mio.render.avatardit.config import PRESETS, STAGES

    p = tsub.add_parser("render", parents=[common], help="AvatarDiT (paper §5.2): stage face | multiview | joint",
                        description=t.__doc__, formatter_class=RAW)
    p.add_argument("--stage", choices=STAGES, required=True)
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    p.add_argument("--wan", metavar="DIR", help="local Wan-Animate diffusers folder (the real backbone)")
    p.add_argument("--vae", metavar="DIR", help="local Wan VAE folder (default: the tiny pixel latents)")
    p.add_argument("--init", metavar="DIR", help="start from the previous stage's checkpoint")
    p.add_argument("--face-dim", type=int, default=None, help="face parameters per frame (61 arkit52, 112 flame112)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=2, help="clips per step and process")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--size", type=int, default=64, help="target frame side in pixels")
    p.add_argument("--latent-frames", type=int, default=3, help="T; clips have 4 (T - 1) + 1 frames")
    p.add_argument("--look", default="default", help="the avatar look rendered as the identity")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in the output folder")
    p.add_argument("-o", "--output", default="out/avatardit/run")
    p.set_defaults(func=_then_leave_the_group(t.train_command))


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("train", help="train a paper-tier model (single process or under torchrun)",
                       description="Train a module. Runs as one process, or under `torchrun --nproc_per_node N "
                                   "-m mio.cli train ...` with DistributedDataParallel (gloo on CPU, NCCL on GPUs). "
                                   "Rerunning the same command resumes from the last checkpoint.")
    tsub = p.add_subparsers(dest="module", metavar="MODULE", required=True)
    _codec(tsub)
    _tts(tsub, common)
    _face(tsub, common)
    _body(tsub, common)
    _render(tsub, common)
