"""Metric networks from files the user gives: ONNX graphs run by onnxruntime on the CPU, CLIP as a
local transformers folder of safetensors. Nothing is downloaded, and nothing that unpickles is opened:
TorchScript and torch.export files are refused by name (a metric network is a file someone else made).

    net = load_onnx("lpips.onnx", "LPIPS", n_inputs=2)      # f(*arrays) -> first output
    sim = ClipSimilarity("clip-folder")(images_a, images_b)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mio.core.errors import InputError


def load_onnx(path: str | Path, what: str, n_inputs: int | None = None) -> Callable[..., np.ndarray]:
    """A metric network from a local ONNX file -> f(*arrays) -> its first output. ONNX is a graph of
    operators and tensors, never code, so a file from elsewhere cannot run anything on load."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} model file {path} does not exist")
    if path.suffix.lower() != ".onnx":
        raise InputError(f"{what} model {path}: Mio runs metric networks only as .onnx files (TorchScript and "
                         "torch.export files unpickle when loaded; convert with torch.onnx.export)")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise InputError(f"{path} is not a readable ONNX {what} model ({' '.join(str(e).split())[:300]})") from None
    names = [i.name for i in session.get_inputs()]
    if n_inputs is not None and len(names) != n_inputs:
        raise InputError(f"{what} model {path} takes {len(names)} input(s); it must take {n_inputs}")

    def run(*arrays: np.ndarray) -> np.ndarray:
        if len(arrays) != len(names):
            raise InputError(f"{what} model takes {len(names)} inputs ({names}), got {len(arrays)}")
        return np.asarray(session.run(None, dict(zip(names, arrays, strict=True)))[0])

    return run


class ClipSimilarity:
    """Cosine similarity of CLIP image embeddings (transformers CLIPModel from a local folder)."""

    def __init__(self, path: str | Path) -> None:
        from transformers import CLIPImageProcessor, CLIPModel

        self.model = CLIPModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True).eval()
        self.processor = CLIPImageProcessor.from_pretrained(str(path), local_files_only=True)

    def embed(self, images: list[np.ndarray]):
        import torch

        inputs = self.processor(images=[np.asarray(im) for im in images], return_tensors="pt")
        with torch.no_grad():
            e = self.model.get_image_features(**inputs)
        e = getattr(e, "pooler_output", e)
        return torch.nn.functional.normalize(e, dim=-1)

    def __call__(self, a: list[np.ndarray], b: list[np.ndarray]) -> float:
        return float((self.embed(a) * self.embed(b)).sum(-1).mean())
