"""Shared training machinery for every learned module (docs/architecture.md §6).

- `dist`: single process or `torchrun` (DistributedDataParallel; gloo on CPU, NCCL on GPUs).
- `checkpoint`: safetensors weights + JSON config (`save_pretrained` / `load_pretrained`), and
  resumable training state (optimizer tensors in safetensors, scalars in JSON). Never pickle.
- `loop`: `Trainer`, the step loop with progress, JSONL logs, periodic checkpoints and resume.
"""

from mio.train.checkpoint import load_pretrained, load_weights, save_pretrained
from mio.train.dist import DistInfo, init_distributed, shutdown_distributed
from mio.train.loop import Trainer, TrainerConfig

__all__ = [
    "DistInfo",
    "Trainer",
    "TrainerConfig",
    "init_distributed",
    "load_pretrained",
    "load_weights",
    "save_pretrained",
    "shutdown_distributed",
]
