"""Checkpoints as safetensors + JSON, never pickle (docs/architecture.md §9).

A *pretrained* directory holds what inference needs:

    path/config.json         the model's constructor arguments (+ "format" metadata)
    path/model.safetensors   the weights

A *training state* directory (`path/train_state/`) holds what resuming needs: optimizer tensors
in `optimizer.safetensors`, everything scalar (step, param-group settings, scheduler, RNG seeds)
in `state.json`. Writes go to a temporary name first and are renamed, so an interrupted save
never leaves a half-written checkpoint where a good one was.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from safetensors.torch import load_file, save_file

from mio.core.errors import CheckpointError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
MAX_CONFIG_BYTES = 1 << 20  # a config is a few kB of settings


def _atomic_dir(path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _swap_in(tmp: Path, path: Path) -> None:
    old = path.with_name(path.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    if old.exists():
        shutil.rmtree(old)


def _state_for_save(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies; tied tensors (same storage) are stored once each under their names."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        out[k] = v.detach().to("cpu").contiguous().clone()
    return out


def save_pretrained(model: torch.nn.Module | dict[str, torch.Tensor], path: str | Path,
                    config: dict[str, Any], *, kind: str | None = None,
                    keep: dict[str, Path | str] | None = None) -> Path:
    """Write `config.json` + `model.safetensors` to `path` (atomically).

    `kind` names the model family (checked on load); `keep` copies extra files into the folder
    (e.g. a README with the training command)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = model if isinstance(model, dict) else model.state_dict()
    meta = dict(config)
    if kind is not None:
        meta["kind"] = kind
    # Each file is written under a temporary name and renamed: a crash mid-save keeps the old one.
    save_file(_state_for_save(state), str(path / (WEIGHTS + ".tmp")))
    (path / (CONFIG + ".tmp")).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(path / (WEIGHTS + ".tmp"), path / WEIGHTS)
    os.replace(path / (CONFIG + ".tmp"), path / CONFIG)
    for name, src in (keep or {}).items():
        shutil.copy(src, path / name)
    return path


def load_pretrained(path: str | Path, *, kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, config) from a directory written by `save_pretrained`; clear errors otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist (expected a folder with {CONFIG} and {WEIGHTS})")
    for name in (CONFIG, WEIGHTS):
        if not (path / name).is_file():
            raise CheckpointError(f"checkpoint {path} is incomplete: {name} is missing")
    if (path / CONFIG).stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"checkpoint {path}: {CONFIG} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        config = json.loads((path / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(f"checkpoint {path}: {CONFIG} is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path}: {CONFIG} must hold a JSON object of settings, "
                              f"got {type(config).__name__}")
    if kind is not None and config.get("kind") not in (None, kind):
        raise CheckpointError(f"checkpoint {path} holds a {config.get('kind')!r} model, not {kind!r}")
    try:
        state = load_file(str(path / WEIGHTS))
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for a damaged file
        raise CheckpointError(f"checkpoint {path}: {WEIGHTS} cannot be read ({e})") from None
    check_finite(state, where=f"checkpoint {path}")
    return state, config


class Pretrained:
    """One loading API for every trained model: `Model.from_pretrained(path)` and
    `model.save_pretrained(path)`, in the folder format above.

    A model class (a torch module) sets `kind` (checked on load: a codec folder is not a TTS), may set
    `embedded` (the shipped checkpoint, loaded for `path=None`) and `config_class` (its settings, a
    `Settings` dataclass held as `self.cfg`); a model built otherwise overrides `from_config` and
    `config_dict`. `prepare_state` may adapt the weights
    before they are loaded (fold adapters, cast dtypes). After loading, `pretrained_config` holds the
    folder's whole config.json (training settings included) and the model is in eval mode.
    """

    kind: ClassVar[str]
    embedded: ClassVar[Path | None] = None
    config_class: ClassVar[Any] = None  # a mio.core.config.Settings dataclass the model is built from
    pretrained_config: dict[str, Any]

    def config_dict(self) -> dict[str, Any]:
        """What config.json holds: by default the model's `cfg` (a `config_class`)."""
        return self.cfg.to_dict()  # type: ignore[attr-defined]

    @classmethod
    def from_config(cls, config: dict[str, Any], **options: Any) -> Self:
        """The model built from config.json: by default `cls(config_class.from_dict(config))`."""
        if cls.config_class is None:
            raise TypeError(f"{cls.__name__} names no config_class: set it, or override from_config")
        return cls(cls.config_class.from_dict(config), **options)  # type: ignore[call-arg]

    @classmethod
    def prepare_state(cls, state: dict[str, torch.Tensor], config: dict[str, Any],
                      **options: Any) -> dict[str, torch.Tensor]:
        return state

    @classmethod
    def checkpoint_path(cls, path: str | Path | None) -> Path:
        """`path`, or the embedded checkpoint when it is None (a clear error if there is none)."""
        if path:
            return Path(path)
        if cls.embedded is None:
            raise CheckpointError(f"{cls.__name__} has no embedded checkpoint; give a checkpoint folder")
        if not (cls.embedded / WEIGHTS).is_file():
            raise CheckpointError(f"the embedded {cls.kind} checkpoint is missing from {cls.embedded}; "
                                  "reinstall Mio or train one (`mio train ...`)")
        return cls.embedded

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, **options: Any) -> Self:
        """The model of a checkpoint folder (None: the embedded one), in eval mode."""
        path = cls.checkpoint_path(path)
        state, config = load_pretrained(path, kind=cls.kind)
        try:
            model = cls.from_config(config, **options)
            state = cls.prepare_state(state, config, **options)
        except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as e:  # settings of wrong types or sizes
            raise CheckpointError(f"checkpoint {path}: its config.json does not describe a {cls.kind} model "
                                  f"({type(e).__name__}: {e})") from None
        load_weights(model, state, where=str(path))  # type: ignore[arg-type]
        model.pretrained_config = config
        return model.eval()  # type: ignore[attr-defined]

    def save_pretrained(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """config.json (`config_dict()` and `extra`) + model.safetensors, written atomically."""
        return save_pretrained(self, path, {**self.config_dict(), **(extra or {})}, kind=self.kind)  # type: ignore[arg-type]


def check_finite(state: dict[str, torch.Tensor], *, where: str) -> None:
    """Refuse NaN/inf weights: a model with one decodes full-scale noise and says nothing."""
    for name, t in state.items():
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{where}: tensor {name!r} holds {bad} NaN or infinite value(s); "
                                  "the file is damaged or the training diverged")


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], *, strict: bool = True,
                 where: str = "checkpoint") -> None:
    """`model.load_state_dict` with a readable error when the shapes or names do not fit."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        raise CheckpointError(f"{where} does not fit the model: {str(e).splitlines()[0]}") from e
    if strict and (missing or unexpected):  # pragma: no cover - load_state_dict raises first
        raise CheckpointError(f"{where}: missing {missing}, unexpected {unexpected}")


# --- resumable training state -------------------------------------------------------------

def save_train_state(path: str | Path, *, step: int, optimizers: dict[str, torch.optim.Optimizer],
                     schedulers: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> None:
    """Optimizer tensors -> safetensors, the rest -> JSON, under `path/train_state`."""
    path = Path(path) / "train_state"
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"step": int(step), "optimizers": {}, "schedulers": {}, "extra": extra or {}}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, pstate in sd["state"].items():
            for key, val in pstate.items():
                if torch.is_tensor(val):
                    tensors[f"{name}.{pid}.{key}"] = val.detach().to("cpu").contiguous().clone()
                else:
                    scalars.setdefault(str(pid), {})[key] = val
        meta["optimizers"][name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    for name, sch in (schedulers or {}).items():
        meta["schedulers"][name] = {k: v for k, v in sch.state_dict().items()
                                    if isinstance(v, int | float | str | list | bool | type(None))}
    meta["torch_rng"] = torch.get_rng_state().tolist()
    tmp = _atomic_dir(path)
    save_file(tensors or {"_empty": torch.zeros(0)}, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps(meta))
    _swap_in(tmp, path)


def load_train_state(path: str | Path, *, optimizers: dict[str, torch.optim.Optimizer],
                     schedulers: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Restore optimizers/schedulers/RNG; returns the JSON meta (with "step"), or None if absent."""
    path = Path(path) / "train_state"
    if not (path / "state.json").is_file():
        return None
    try:
        meta = json.loads((path / "state.json").read_text())
        tensors = load_file(str(path / "optimizer.safetensors"))
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"training state in {path} cannot be read ({e}); delete it to start afresh") from e
    for name, opt in optimizers.items():
        saved = meta["optimizers"].get(name)
        if saved is None:
            raise CheckpointError(f"training state in {path} has no optimizer {name!r}")
        state: dict[int, dict[str, Any]] = {}
        for key, t in tensors.items():
            oname, pid, pkey = key.split(".", 2) if key.count(".") >= 2 else (None, None, None)
            if oname == name:
                state.setdefault(int(pid), {})[pkey] = t
        for pid, sc in saved["scalars"].items():
            state.setdefault(int(pid), {}).update(sc)
        try:
            opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"training state in {path} does not fit optimizer {name!r}: {e}") from e
    for name, sch in (schedulers or {}).items():
        if name in meta["schedulers"]:
            sch.load_state_dict({**sch.state_dict(), **meta["schedulers"][name]})
    if "torch_rng" in meta:
        torch.set_rng_state(torch.tensor(meta["torch_rng"], dtype=torch.uint8))
    return meta


def checkpoint_exists(path: str | Path) -> bool:
    p = Path(path)
    return (p / CONFIG).is_file() and (p / WEIGHTS).is_file()


def environment_threads(default: int | None = None) -> int:
    """Threads for a training process: MIO_TRAIN_THREADS, else `default`, else torch's choice."""
    v = os.environ.get("MIO_TRAIN_THREADS")
    return int(v) if v else (default or torch.get_num_threads())
