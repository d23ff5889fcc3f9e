"""`mio train <module>`: each trainable module registers its own sub-command here.

A module listed in TRAINERS provides `register_train(train_sub, common)`; modules that are not
present are skipped, so the command lists exactly what this install can train.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

TRAINERS = (
    "mio.talker.codec.train",  # mio train codec
    "mio.talker.tts.train",  # mio train tts
    "mio.face.unils.train",  # mio train face --stage vq|free|audio
    "mio.body.flood.train",  # mio train body --stage vae|dit
    "mio.render.avatardit.train",  # mio train render --stage face|multiview|joint
)


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("train", help="train a paper-tier model (single process or under torchrun)",
                       description="Train a module. Runs as one process, or under `torchrun --nproc_per_node N "
                                   "-m mio.cli train ...` with DistributedDataParallel (gloo on CPU, NCCL on GPUs). "
                                   "Rerunning the same command resumes from the last checkpoint.")
    tsub = p.add_subparsers(dest="module", metavar="MODULE", required=True)
    for name in TRAINERS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name).register_train(tsub, common)
