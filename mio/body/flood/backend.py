"""`FloodBody`: FloodDiffusion as the runtime's Body Animator backend (`--set body.backend=flood`).

    body = FloodBody(BodyConfig(backend="flood"))          # loads the embedded weights once
    session = body.new_session(seed=0)
    session.set_prompt("wave with the right hand", t=1.0)
    pose = session.frame(1.25)                             # BodyPose(features (263,), joints (22, 3))

Each session owns one endless `FloodStream` (§4.2.5) and a streaming feature -> joint decoder.
`frame(t)` steps the stream until the native 20 fps frame after t is committed, interpolates
joints between the two native frames around t and attaches the nearest frame's features.

Following the Thinker: its gesture prompts go to `set_prompt` as they come. FloodDiffusion
repeats a prompt's motion until told otherwise (§4.3, Figure 10), so after `hold` seconds
without a new prompt the session gives the rest prompt "stand" — as the paper's application
does — and `None` (interrupts, end of a turn) gives it at once. Joints are kept on stage:
walking would carry the avatar out of a fixed camera, so the horizontal root drift is pulled
back to the origin with a slow leak (`recentre` seconds; features are left as generated).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mio.body.base import BodyBackend, BodyPose, BodySession, frame_position
from mio.body.flood.dit import FloodDiT
from mio.body.flood.stream import REST_PROMPT, FloodStream
from mio.body.flood.text import TextEncoder, shared_text_encoder
from mio.body.flood.vae import CausalVAE
from mio.body.humanml3d import StreamingFeatureDecoder
from mio.core.config import BodyConfig
from mio.core.errors import CheckpointError
from mio.core.layouts import BODY_FPS

EMBEDDED = Path(__file__).parent / "weights" / "flood-tiny"
GESTURE_HOLD = 3.0  # s a gesture prompt plays before the session returns to "stand"
RECENTRE = 3.0  # s, time constant pulling the root's horizontal drift back to the origin


def checkpoint_dir(path: str | Path | None) -> Path:
    """The checkpoint folder (holding vae/ and dit/): the given one or the embedded weights."""
    root = Path(path) if path else EMBEDDED
    for part in ("vae", "dit"):
        if not (root / part / "model.safetensors").is_file():
            raise CheckpointError(f"FloodDiffusion checkpoint {root} has no {part}/model.safetensors "
                                  "(train one with `mio train body --stage vae|dit`)")
    return root


class FloodBodySession(BodySession):
    def __init__(self, body: FloodBody, seed: int = 0, *, hold: float | None = GESTURE_HOLD,
                 recentre: float | None = RECENTRE, guidance: float | None = None) -> None:
        self.fps = BODY_FPS
        self.stream = FloodStream(body.dit, body.vae, body.text, seed=seed,
                                  guidance=body.guidance if guidance is None else guidance)
        self.hold, self.recentre = hold, recentre
        self._decoder = StreamingFeatureDecoder()
        self._features: list[np.ndarray] = []  # native frames, index = frame number - self._base
        self._joints: list[np.ndarray] = []
        self._base = 0
        self._offset = np.zeros(3)  # horizontal correction applied to joints (recentring)
        self._last_t = 0.0
        self._rest_at: float | None = None

    # ---- BodySession ----
    def set_prompt(self, prompt: str | None, t: float) -> None:
        if prompt is None or not prompt.strip():
            self.stream.set_prompt(REST_PROMPT, t)
            self._rest_at = None
            return
        self.stream.set_prompt(prompt, t)
        self._rest_at = None if self.hold is None else float(t) + self.hold

    def frame(self, t: float) -> BodyPose:
        t, k, frac = frame_position(t, self._last_t, self.fps)
        self._last_t = t
        if self._rest_at is not None and t >= self._rest_at - 4 / self.fps:
            self.stream.set_prompt(REST_PROMPT, self._rest_at)
            self._rest_at = None
        self._make_until(k + 1)
        a, b = self._joints[k - self._base], self._joints[k + 1 - self._base]
        joints = (a + frac * (b - a)).astype(np.float32)
        features = self._features[(k if frac < 0.5 else k + 1) - self._base]
        self._forget_before(k)
        return BodyPose(features=features, joints=joints)

    # ---- native frames ----
    def _make_until(self, index: int) -> None:
        while self._base + len(self._features) <= index:
            for f in self.stream.step().numpy():
                j = self._decoder.push(f)
                if self.recentre:
                    root = j[0] + self._offset
                    leak = 1.0 - np.exp(-1.0 / (self.recentre * self.fps))
                    self._offset -= leak * np.array([root[0], 0.0, root[2]])
                j = j + self._offset
                self._features.append(f.astype(np.float32))
                self._joints.append(j.astype(np.float32))

    def _forget_before(self, index: int) -> None:
        drop = index - self._base
        if drop > 0:
            del self._features[:drop]
            del self._joints[:drop]
            self._base = index


class FloodBody(BodyBackend):
    """Weights (VAE, DiT, text encoder) load once per process; sessions share them."""

    def __init__(self, config: BodyConfig | None = None, *, text: TextEncoder | None = None,
                 guidance: float = 1.0) -> None:
        self.config = config or BodyConfig(backend="flood")
        root = checkpoint_dir(self.config.checkpoint)
        self.vae = CausalVAE.from_pretrained(root / "vae")
        self.dit = FloodDiT.from_pretrained(root / "dit")
        self.text = text or shared_text_encoder(self.dit.pretrained_config.get("text_encoder", "minilm"),
                                                self.dit.cfg.text_tokens)
        self.guidance = guidance

    def new_session(self, seed: int | None = None) -> FloodBodySession:
        return FloodBodySession(self, self.config.seed if seed is None else seed)


__all__ = ["EMBEDDED", "FloodBody", "FloodBodySession", "checkpoint_dir"]
