"""The shared training loop: save/load, resume equals a straight run, DDP on 2 gloo processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mio.core.errors import CheckpointError
from mio.train import Trainer, TrainerConfig, load_pretrained, save_pretrained
from mio.train.checkpoint import load_weights
from tests.torchrun import run_two_ranks

pytestmark = pytest.mark.slow  # every test here trains


def _toy(seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def _batch(step: int):
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(16, 4, generator=g)
    return x, x.sum(dim=1, keepdim=True).sin()


def _run(out: Path, steps: int, resume: bool = True, save_every: int = 5) -> tuple[torch.nn.Module, Trainer]:
    model = _toy()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    tr = Trainer(TrainerConfig(out_dir=str(out), max_steps=steps, log_every=1, save_every=save_every,
                               resume=resume, progress=False),
                 model, {"main": opt}, model_config={"layers": 2}, kind="toy")

    def step_fn(step, batch):
        x, y = batch
        loss = torch.nn.functional.mse_loss(tr.model(x), y)
        tr.backward_step(loss, "main")
        return {"loss": loss.item()}

    tr.fit(_batch, step_fn)
    return model, tr


def test_training_lowers_the_loss_and_saves_a_loadable_checkpoint(tmp_path):
    model, tr = _run(tmp_path / "run", 30)
    losses = [h["loss"] for h in tr.history]
    assert losses[-1] < losses[0] * 0.7
    state, cfg = load_pretrained(tmp_path / "run", kind="toy")
    assert cfg["layers"] == 2 and cfg["trained_steps"] == 30
    fresh = _toy(seed=5)
    load_weights(fresh, state)
    x, _ = _batch(0)
    assert torch.allclose(fresh(x), model(x))
    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(logs) == 30 and logs[-1]["step"] == 30


def test_resumed_run_equals_a_straight_run(tmp_path):
    straight, _ = _run(tmp_path / "a", 10)
    _run(tmp_path / "b", 5)  # stops at 5 (checkpoint), then the same command continues to 10
    resumed, tr = _run(tmp_path / "b", 10)
    assert tr.history[0]["step"] == 6
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


def test_bad_checkpoints_are_reported_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(tmp_path / "nope")
    save_pretrained(_toy(), tmp_path / "ok", {"layers": 2}, kind="toy")
    with pytest.raises(CheckpointError, match="not 'codec'"):
        load_pretrained(tmp_path / "ok", kind="codec")
    (tmp_path / "ok" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_pretrained(tmp_path / "ok")
    save_pretrained(torch.nn.Linear(3, 3), tmp_path / "other", {})
    state, _ = load_pretrained(tmp_path / "other")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_weights(_toy(), state)


@pytest.mark.parametrize("config, message", [
    ("[1, 2, 3]", "must hold a JSON object of settings, got list"),
    ('"codec"', "must hold a JSON object of settings, got str"),
    ("null", "must hold a JSON object of settings, got NoneType"),
    ("{'kind': 'toy'}", "is not valid JSON"),
    ("[" * 100_000, "is not valid JSON"),
    (b"\xff\xfe\x00garbage", "is not valid JSON"),
    (" " * (2 << 20), "is larger than"),
])
def test_config_files_from_elsewhere_are_refused_in_one_line(tmp_path, config, message):
    save_pretrained(_toy(), tmp_path / "ck", {"layers": 2}, kind="toy")
    p = tmp_path / "ck" / "config.json"
    p.write_bytes(config if isinstance(config, bytes) else config.encode())
    with pytest.raises(CheckpointError, match=message) as e:
        load_pretrained(tmp_path / "ck")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_weights_with_nan_or_inf_are_refused_not_run(tmp_path, bad):
    from safetensors.torch import save_file

    save_pretrained(_toy(), tmp_path / "ck", {"layers": 2}, kind="toy")
    state, _ = load_pretrained(tmp_path / "ck")
    state["2.bias"] = state["2.bias"].clone().fill_(bad)
    save_file(state, str(tmp_path / "ck" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"tensor '2.bias' holds 1 NaN or infinite value\(s\)"):
        load_pretrained(tmp_path / "ck")


def test_a_pickle_under_the_weights_name_is_never_unpickled(tmp_path):
    import pickle

    save_pretrained(_toy(), tmp_path / "ck", {"layers": 2}, kind="toy")
    marker = tmp_path / "ran"

    class Payload:  # what a hostile .pt renamed to model.safetensors would do when unpickled
        def __reduce__(self):
            return (marker.write_text, ("unpickled",))

    (tmp_path / "ck" / "model.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_pretrained(tmp_path / "ck")
    assert not marker.exists()


DDP_SCRIPT = r"""
import sys, torch
from mio.train import Trainer, TrainerConfig, init_distributed
info = init_distributed()
torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
tr = Trainer(TrainerConfig(out_dir=sys.argv[1] + "/ck", max_steps=3, log_every=1, progress=False), model, {"main": opt},
             model_config={}, kind="toy", info=info)
ddp = tr.ddp(model)
def batch_fn(step):
    g = torch.Generator().manual_seed(step * 10 + info.rank)  # each rank its own shard
    return torch.randn(8, 4, generator=g)
def step_fn(step, x):
    loss = ddp(x).pow(2).mean()
    tr.backward_step(loss, "main")
    return {"loss": loss.item()}
tr.fit(batch_fn, step_fn)
import json, pathlib
# one file per rank: prints from two processes interleave on the shared stdout
pathlib.Path(sys.argv[1], f"rank{info.rank}.txt").write_text(
    json.dumps({"world": info.world_size, "weight": model.weight.detach().tolist()}))
from mio.train import shutdown_distributed
shutdown_distributed()  # exiting with the gloo group up can abort in its teardown
"""


def test_ddp_on_two_gloo_processes_keeps_replicas_identical(tmp_path):
    ranks = [json.loads(r) for r in run_two_ranks(DDP_SCRIPT, tmp_path)]
    assert all(r["world"] == 2 for r in ranks)
    assert ranks[0]["weight"] == ranks[1]["weight"]  # gradients were averaged: both replicas hold the same weights
    assert (tmp_path / "ck" / "model.safetensors").is_file()


def test_lora_adapters_are_read_only_from_safetensors(tmp_path):
    from mio.thinker.evolve.grpo import safe_adapter

    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04K\x01.")  # a pickle PEFT would torch.load
    with pytest.raises(CheckpointError, match="has no adapter_model.safetensors"):
        safe_adapter(tmp_path)
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    assert safe_adapter(tmp_path) == tmp_path


def test_mio_train_commands_leave_the_process_group_even_when_they_fail(monkeypatch):
    """Every `mio train` command leaves the torch.distributed group when it ends, failed or not (a
    process exiting with the gloo group up can abort in gloo's teardown)."""
    import argparse

    import mio.train
    from mio.cli import train as cli_train

    left = []
    monkeypatch.setattr(mio.train, "shutdown_distributed", lambda: left.append(True))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli_train.register(sub, argparse.ArgumentParser().add_subparsers(), argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["train", "face", "--stage", "vq"])

    def boom(_args):
        raise RuntimeError("training failed")

    wrapped = cli_train._then_leave_the_group(boom)
    with pytest.raises(RuntimeError):
        wrapped(args)
    assert left == [True]
    assert args.func.__name__ == "run"  # the registered command is wrapped too
