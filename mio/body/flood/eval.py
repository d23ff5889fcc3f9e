"""Motion evaluation (§7.4, Table 5): T2M-style evaluator and metrics, plus transition jerk.

The T2M metrics (Guo et al. 2022) embed texts and motions with a pair of encoders trained
contrastively, then measure:

- R-precision R@1/2/3: in groups of 32 (one true text + 31 others), how often the motion's own
  text is among its k nearest texts (Euclidean).
- FID: Frechet distance between embeddings of real and generated motions.
- MM-Dist: mean distance between a motion's embedding and its text's.
- Diversity: mean distance between random pairs of generated motions (closer to real is better).

The official T2M evaluator (its text/motion encoders) was trained on HumanML3D and is not
available offline; `T2MEvaluator` trains the same kind of pair on the project's motion library
(MiniLM sentence embedding -> MLP for text; conv + bidirectional GRU over 263-D features for
motion). Official weights converted to safetensors load with `T2MEvaluator.from_pretrained(path)` when the
architecture matches; otherwise a clear `CheckpointError` says so.

Transition smoothness (BABEL protocol): jerk is the third time derivative of joint positions;
around each prompt change, Peak Jerk (PJ) is the largest per-frame mean joint jerk and Area
Under Jerk (AUJ) its integral over the window. Units here are m/s^3 and m/s^2 (the paper's
numbers come from its own normalisation and are not comparable in scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mio.body.actions import ACTIONS
from mio.body.motionlib import MotionSample
from mio.core.config import Settings
from mio.core.layouts import HUMANML3D
from mio.metrics import body
from mio.train.checkpoint import Pretrained

R_GROUP = 32  # T2M's R-precision group size
JERK_WINDOW = 15  # frames either side of a transition (0.75 s at 20 fps)
CROSSFADE_SKIP = 16  # frames after a segment start before it counts as the action alone


@dataclass(frozen=True)
class EvaluatorConfig(Settings):
    feat_dim: int = HUMANML3D.dim
    text_dim: int = 384  # MiniLM sentence embedding
    hidden: int = 128  # motion encoder width
    embed: int = 128  # shared embedding size
    temperature: float = 0.1  # contrastive logits = -distance / temperature


class T2MEvaluator(Pretrained, nn.Module):
    kind = "flood-evaluator"

    config_class = EvaluatorConfig

    def __init__(self, cfg: EvaluatorConfig):
        super().__init__()
        self.cfg = cfg
        self.text = nn.Sequential(nn.Linear(cfg.text_dim, 256), nn.LeakyReLU(0.2), nn.Linear(256, cfg.embed))
        self.movement = nn.Sequential(  # T2M's movement encoder: x4 temporal downsampling
            nn.Conv1d(cfg.feat_dim, cfg.hidden, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv1d(cfg.hidden, cfg.hidden, 4, 2, 1), nn.LeakyReLU(0.2),
        )
        self.gru = nn.GRU(cfg.hidden, cfg.hidden, batch_first=True, bidirectional=True)
        self.motion_out = nn.Sequential(nn.Linear(2 * cfg.hidden, cfg.hidden), nn.LeakyReLU(0.2),
                                        nn.Linear(cfg.hidden, cfg.embed))
        self.register_buffer("feat_mean", torch.zeros(cfg.feat_dim))
        self.register_buffer("feat_std", torch.ones(cfg.feat_dim))

    def embed_text(self, sentence: torch.Tensor) -> torch.Tensor:
        """(N, 384) -> (N, E)"""
        return self.text(sentence)

    def embed_motion(self, features: torch.Tensor) -> torch.Tensor:
        """(N, T, 263) raw features -> (N, E)"""
        x = (features - self.feat_mean) / self.feat_std
        h = self.movement(x.transpose(1, 2)).transpose(1, 2)  # (N, T/4, H)
        out, _ = self.gru(h)
        return self.motion_out(out.mean(1))

    def loss(self, sentence: torch.Tensor, features: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE on negative distances; pairs of the same action (group) are not negatives."""
        t, m = self.embed_text(sentence), self.embed_motion(features)
        logits = -torch.cdist(m, t) / self.cfg.temperature  # (N, N)
        same = group[:, None] == group[None, :]
        eye = torch.eye(len(group), dtype=torch.bool)
        logits = logits.masked_fill(same & ~eye, float("-inf"))
        target = torch.arange(len(group))
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


_ACTION_OF = {t: a.name for a in ACTIONS.values() for t in a.labels}


def action_of(text: str) -> str:
    """The library action a label names (the text itself for other datasets)."""
    return _ACTION_OF.get(text, text)


def segment_crops(samples: list[MotionSample], min_frames: int = 32, max_frames: int = 64,
                  stride: int | None = None) -> list[tuple[np.ndarray, str]]:
    """(features, text) of each segment's interior (past the crossfade into it), at most max_frames;
    with `stride`, every window of max_frames starting `stride` frames apart."""
    out = []
    for s in samples:
        for g in s.segments:
            a = g.start + (CROSSFADE_SKIP if g.start > 0 else 0)
            starts = range(a, max(a + 1, g.end - max_frames + 1), stride) if stride else [a]
            for b in starts:
                if g.end - b >= min_frames:
                    out.append((s.features[b:min(g.end, b + max_frames)], g.text))
    return out


def train_evaluator(data: str | Path, out: str | Path, *, steps: int = 1500, batch: int = 64, seed: int = 0,
                    lr: float = 1e-3, limit: int | None = None, crop: int = 40, progress: bool = True) -> T2MEvaluator:
    from mio.body.flood.text import shared_text_encoder
    from mio.body.flood.train import feature_stats, load_samples
    from mio.train.loop import Trainer, TrainerConfig

    samples = load_samples(data, "train", limit)
    crops = segment_crops(samples, min_frames=crop)
    texts = sorted({t for _, t in crops})
    enc = shared_text_encoder("minilm")
    sent = torch.from_numpy(np.stack([e.sentence for e in enc.encode(texts)]))
    t_index = {t: i for i, t in enumerate(texts)}
    groups = {a: i for i, a in enumerate(sorted({action_of(t) for t in texts}))}
    cfg = EvaluatorConfig(text_dim=enc.dim)
    model = T2MEvaluator(cfg)
    mean, std = feature_stats(data, samples)
    model.feat_mean.copy_(torch.from_numpy(mean))
    model.feat_std.copy_(torch.from_numpy(std))
    opt = torch.optim.AdamW(model.parameters(), lr=lr)

    trainer = Trainer(TrainerConfig(str(out), steps, log_every=20, save_every=300, seed=seed, desc="body evaluator",
                                    progress=progress), model, {"eval": opt}, model_config=cfg.to_dict(), kind=T2MEvaluator.kind)
    net = trainer.ddp(model)

    def batch_fn(step: int):
        rng = np.random.default_rng([seed, step, trainer.info.rank])
        idx = rng.choice(len(crops), size=batch, replace=False)
        feats, sents, grp = [], [], []
        for i in idx:
            f, text = crops[i]
            s = int(rng.integers(0, len(f) - crop + 1))
            feats.append(f[s:s + crop])
            sents.append(sent[t_index[text]])
            grp.append(groups[action_of(text)])
        return torch.stack(sents), torch.from_numpy(np.stack(feats)), torch.tensor(grp)

    def step_fn(step: int, b) -> dict[str, float]:
        loss = (net.module if hasattr(net, "module") else net).loss(*b)
        trainer.backward_step(loss, "eval")
        return {"loss": float(loss.detach())}

    trainer.fit(batch_fn, step_fn)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def t2m_metrics(evaluator: T2MEvaluator, texts: list[str], motions: list[np.ndarray],
                real: list[np.ndarray], text_sentences: np.ndarray) -> dict[str, float | None]:
    """Table 5's HumanML3D columns for generated `motions` (paired with `texts`) against `real`.
    R-precision ranks each motion among R_GROUP texts: with fewer pairs it is None (not measured)."""
    with torch.no_grad():
        t = evaluator.embed_text(torch.from_numpy(text_sentences)).numpy()
        m = _embed(evaluator, motions)
        r = _embed(evaluator, real)
    rp = [float(x) for x in body.r_precision(t, m, top_k=3, batch=R_GROUP)] if len(t) >= R_GROUP else [None] * 3
    return {"R@1": rp[0], "R@2": rp[1], "R@3": rp[2], "FID": body.motion_fid(r, m),
            "MM-Dist": body.mm_dist(t, m), "Diversity": body.diversity(m)}


def _embed(evaluator: T2MEvaluator, motions: list[np.ndarray]) -> np.ndarray:
    out = []
    for f in motions:  # variable lengths: one at a time
        out.append(evaluator.embed_motion(torch.from_numpy(np.asarray(f, np.float32))[None])[0].numpy())
    return np.stack(out)


__all__ = ["EvaluatorConfig", "T2MEvaluator", "action_of", "segment_crops", "t2m_metrics", "train_evaluator"]
