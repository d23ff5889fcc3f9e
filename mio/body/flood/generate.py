"""Motion from prompts without the runtime: a whole timeline streamed (what `mio body generate`
writes) and single-prompt clips generated offline in a batch (what `mio bench body` scores).

    features, joints = generate_motion(FloodBody(), ["walk forward", "wave"], [0.0, 3.0], seconds=6.0)
    clips = generate_batch(dit, vae, text, ["clap", "turn around"], n_latents=14)   # (B, 4K, 263)
"""

from __future__ import annotations

import numpy as np
import torch

from mio.body.flood.stream import frame_noise, predict_velocity, schedule_fn
from mio.body.humanml3d import features_to_joints
from mio.core.layouts import BODY_FPS


def generate_motion(body, prompts: list[str], at: list[float], seconds: float, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Stream prompts at their times for `seconds`; -> (features (T, 263), joints (T, 22, 3))."""
    stream = body.new_session(seed).stream
    order = sorted(zip(at, prompts, strict=True))
    n = int(round(seconds * BODY_FPS))
    feats: list[np.ndarray] = []
    pending = list(order)
    while len(feats) < n:
        now = len(feats) / BODY_FPS
        while pending and pending[0][0] <= now + stream.n_s * stream.frames_per_latent / BODY_FPS:
            t, p = pending.pop(0)  # tell the stream as soon as the prompt's frames enter the window
            stream.set_prompt(p, t)
        feats.extend(stream.step().numpy())
    features = np.stack(feats[:n]).astype(np.float32)
    return features, features_to_joints(features).astype(np.float32)


@torch.no_grad()
def generate_batch(dit, vae, text, prompts: list[str], n_latents: int, seed: int = 0, guidance: float = 1.0
                   ) -> np.ndarray:
    """Offline generation of single-prompt clips, batched (same schedule for all). -> (B, 4K, 263)"""
    cfg = dit.cfg
    alpha_fn = schedule_fn("chunk" if cfg.schedule == "chunk" else "triangular", cfg.n_s)
    embs = text.encode(prompts)
    tok = torch.from_numpy(np.stack([e.tokens for e in embs]))[:, None]  # (B, 1, L, D)
    mask = torch.from_numpy(np.stack([e.mask for e in embs]))[:, None]
    sent = torch.from_numpy(np.stack([e.sentence for e in embs]))[:, None]
    b = len(prompts)
    total = n_latents + cfg.n_s
    z = torch.stack([torch.stack([frame_noise(seed + i, k, cfg.latent_dim) for k in range(total)])
                     for i in range(b)])  # (B, K + n_s, C)
    ks = torch.arange(total)
    s = 0
    while bool((alpha_fn(s / cfg.n_s, ks[:n_latents]) < 1).any()):
        a0, a1 = alpha_fn(s / cfg.n_s, ks), alpha_fn((s + 1) / cfg.n_s, ks)
        moving = ((a0 < 1) & (a1 > 0)).nonzero()
        first, last = int(moving[0]), int(moving[-1]) + 1
        lo = max(0, first - cfg.context)
        local = torch.zeros(b, last - lo, dtype=torch.long)
        v = predict_velocity(dit, z[:, lo:last], a0[None, lo:last].expand(b, -1), local, tok, mask, sent, guidance)
        z[:, first:last] += v[:, first - lo:] * (a1 - a0)[None, first:last, None]
        s += 1
    return vae.decode(z[:, :n_latents]).numpy()


__all__ = ["generate_batch", "generate_motion"]
