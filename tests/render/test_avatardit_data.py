"""AvatarDiT's rendered training clips: every stage's supervision, shaped for the model."""

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clips():
    pytest.importorskip("anny")
    pytest.importorskip("moderngl")
    pytest.importorskip("diffusers")
    from mio.render.avatardit.data import ClipConfig, RenderedClips

    c = RenderedClips(ClipConfig(size=32, latent_frames=2, face_size=32))
    yield c
    c.close()


@pytest.mark.parametrize("stage", ["face", "multiview", "joint"])
def test_clips_for_each_stage(clips, stage):
    c = clips.clip(3, stage)
    assert c["video"].shape == (5, 3, 32, 32) and c["control"].shape == (5, 3, 32, 32)
    assert c["face_params"].shape == (5, 61) and c["face_pixels"].shape == (5, 3, 32, 32)
    assert 1 <= len(c["references"]) <= 5 and c["camera"].shape == (16,)
    assert c["video"].min() >= -1 and c["video"].max() <= 1 and c["video"].std() > 0.05
    if stage == "face":
        assert len(c["references"]) == 1
        np.testing.assert_allclose(c["camera"], clips.clip(4, stage)["camera"])  # always the front camera
    assert np.array_equal(clips.clip(3, stage)["video"], c["video"])  # deterministic per seed


@pytest.mark.slow  # training
def test_collated_batch_runs_a_tiny_training_step(clips):
    from mio.render.avatardit.config import AvatarDiTConfig
    from mio.render.avatardit.data import PixelLatents, collate
    from mio.render.avatardit.model import AvatarDiT
    from mio.render.avatardit.train import training_step

    b = collate([clips.clip(s, "joint") for s in (1, 2)], PixelLatents())
    assert b["x0"].shape == (2, 12, 2, 4, 4) and b["references"].shape[2] >= 1
    cfg = AvatarDiTConfig.tiny()
    loss = training_step(AvatarDiT(cfg), cfg, b, "joint", torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)


def test_evaluate_a_checkpoint_on_held_out_clips(tmp_path):
    from dataclasses import asdict

    from mio.render.avatardit.config import AvatarDiTConfig
    from mio.render.avatardit.data import ClipConfig
    from mio.render.avatardit.evaluate import evaluate
    from mio.render.avatardit.model import AvatarDiT
    from mio.train import save_pretrained

    cfg = AvatarDiTConfig.tiny()
    save_pretrained(AvatarDiT(cfg), tmp_path / "ck", {"stage": "joint", "avatardit": cfg.to_dict(),
                                                      "clips": asdict(ClipConfig(size=32, latent_frames=2))},
                    kind="avatardit")
    r = evaluate(str(tmp_path / "ck"), clips=1, steps=2)
    assert r["stage"] == "joint" and np.isfinite(r["psnr_db"])
    assert r["ceiling"]["psnr_db"] > r["mean_frame"]["psnr_db"] > 5  # the brackets are ordered
