"""The step loop every `mio train <module>` shares.

A module supplies its networks, optimizers, a `batch_fn(step) -> batch` (deterministic per step and
rank, so a resumed run sees the same data a straight run would) and a `step_fn(step, batch) ->
{name: float}` that does forward, backward and the optimizer steps (GAN training steps two
optimizers, so the loop does not presume one). The Trainer does the rest:

- single process or torchrun DDP (wrap with `Trainer.ddp(module)`; logs averaged over ranks);
- a progress bar with the latest losses on rank 0, JSONL logs in `out_dir/log.jsonl`;
- checkpoints every `save_every` steps and at the end: `out_dir/{config.json, model.safetensors}`
  for inference, `out_dir/train_state/` (optimizers, extra networks, step, RNG) for resuming;
- resume: rerunning the same command continues from the last checkpoint (`resume=False` restarts).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from mio.core.errors import CheckpointError
from mio.train import checkpoint as ckpt
from mio.train.dist import DistInfo, all_reduce_mean, barrier, init_distributed, unwrap, wrap_ddp


@dataclass
class TrainerConfig:
    out_dir: str
    max_steps: int
    log_every: int = 10
    save_every: int = 200
    grad_clip: float | None = 1.0
    seed: int = 0
    resume: bool = True
    threads: int | None = None  # torch intra-op threads; None = MIO_TRAIN_THREADS or torch's default
    desc: str = "train"
    progress: bool = True


class Trainer:
    def __init__(self, cfg: TrainerConfig, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                 *, model_config: dict[str, Any], kind: str, schedulers: dict[str, Any] | None = None,
                 extra_modules: dict[str, torch.nn.Module] | None = None, info: DistInfo | None = None,
                 save_fn: Callable[[torch.nn.Module, Path], None] | None = None):
        """`model` is what `from_pretrained` loads later (saved with `model_config` + `kind`);
        `extra_modules` (e.g. discriminators) are only needed to resume. `save_fn(model, dir)`
        replaces the default safetensors save (e.g. to save only a LoRA adapter)."""
        self.cfg = cfg
        self.info = info or init_distributed()
        self.model = model
        self.optimizers = optimizers
        self.schedulers = schedulers or {}
        self.extra = extra_modules or {}
        self.model_config = model_config
        self.kind = kind
        self.save_fn = save_fn
        self.out = Path(cfg.out_dir)
        self.step = 0
        self.history: list[dict[str, float]] = []
        threads = cfg.threads or ckpt.environment_threads()
        torch.set_num_threads(max(1, threads))
        torch.manual_seed(cfg.seed + self.info.rank)

    # -- helpers for step functions ------------------------------------------------------
    def ddp(self, module: torch.nn.Module, **kwargs) -> torch.nn.Module:
        return wrap_ddp(module, self.info, **kwargs)

    def backward_step(self, loss: torch.Tensor, optimizer: str, params=None) -> float:
        """zero_grad -> backward -> clip -> step for one named optimizer; returns the grad norm."""
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = 0.0
        if self.cfg.grad_clip:
            ps = params if params is not None else [p for g in opt.param_groups for p in g["params"]]
            norm = float(torch.nn.utils.clip_grad_norm_(ps, self.cfg.grad_clip))
        opt.step()
        if optimizer in self.schedulers:
            self.schedulers[optimizer].step()
        return norm

    # -- checkpoints ---------------------------------------------------------------------
    def save(self) -> None:
        if self.info.is_main:
            model = unwrap(self.model)
            if self.save_fn is not None:
                self.save_fn(model, self.out)
            else:
                ckpt.save_pretrained(model, self.out, {**self.model_config, "trained_steps": self.step}, kind=self.kind)
            ckpt.save_train_state(self.out, step=self.step, optimizers=self.optimizers, schedulers=self.schedulers,
                                  extra={"seed": self.cfg.seed, "world_size": self.info.world_size})
            if self.extra:
                mdir = self.out / "train_state" / "modules"
                mdir.mkdir(parents=True, exist_ok=True)
                for name, m in self.extra.items():
                    save_file({k: v.detach().cpu().contiguous().clone() for k, v in unwrap(m).state_dict().items()},
                              str(mdir / f"{name}.safetensors"))
        barrier()

    def try_resume(self) -> bool:
        if not self.cfg.resume or not (self.out / "train_state" / "state.json").is_file():
            return False
        if self.save_fn is None:
            state, _ = ckpt.load_pretrained(self.out, kind=self.kind)
            ckpt.load_weights(unwrap(self.model), state, where=str(self.out))
        else:
            load = getattr(self.save_fn, "load", None)
            if load is None:
                raise CheckpointError(f"cannot resume {self.out}: its save_fn has no .load")
            load(unwrap(self.model), self.out)
        for name, m in self.extra.items():
            f = self.out / "train_state" / "modules" / f"{name}.safetensors"
            if f.is_file():
                ckpt.load_weights(unwrap(m), load_file(str(f)), where=str(f))
        meta = ckpt.load_train_state(self.out, optimizers=self.optimizers, schedulers=self.schedulers)
        self.step = int(meta["step"]) if meta else 0
        return True

    # -- the loop --------------------------------------------------------------------------
    def fit(self, batch_fn: Callable[[int], Any], step_fn: Callable[[int, Any], dict[str, float]]) -> dict[str, float]:
        """Run until `max_steps`; returns the last logged (rank-averaged) values."""
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.try_resume()
        bar = None
        if self.info.is_main and self.cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.cfg.max_steps, initial=self.step, desc=self.cfg.desc, unit="step", dynamic_ncols=True)
            if resumed:
                bar.write(f"resuming {self.out} at step {self.step}")
        log_path = self.out / "log.jsonl"
        last: dict[str, float] = {}
        acc: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        for m in [self.model, *self.extra.values()]:
            m.train()
        while self.step < self.cfg.max_steps:
            batch = batch_fn(self.step)
            logs = step_fn(self.step, batch)
            self.step += 1
            for k, v in logs.items():
                v = float(v)
                if not math.isfinite(v):
                    raise FloatingPointError(f"{self.cfg.desc}: {k} became {v} at step {self.step}; "
                                             "lower the learning rate or check the data")
                acc.setdefault(k, []).append(v)
            if bar is not None:
                bar.update(1)
            if self.step % self.cfg.log_every == 0 or self.step == self.cfg.max_steps:
                last = {k: all_reduce_mean(sum(v) / len(v)) for k, v in acc.items()}
                acc = {}
                last["step"] = self.step
                last["seconds"] = round(time.perf_counter() - t0, 3)
                self.history.append(last)
                if self.info.is_main:
                    with log_path.open("a") as f:
                        f.write(json.dumps(last) + "\n")
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.4g}" for k, v in last.items() if k not in ("step", "seconds")}, refresh=False)
            if self.step % self.cfg.save_every == 0 or self.step == self.cfg.max_steps:
                self.save()
        if bar is not None:
            bar.close()
        return last
