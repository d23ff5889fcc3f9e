"""Kodama audio tokenizer (paper §2.1): 24 kHz speech <-> 8 x 1024-entry tokens at 12.5 Hz (1 kbps).

- `config`: rates fixed by the paper, widths by preset (`paper`, `embedded`, `tiny`).
- `modules`: causal, streaming layers (convs with state, Snake, MRF, resampler, ConvNeXt, ISTFT).
- `quant`: residual VQ with factorised codes; `model`: the encoders, band-split, RVQs, Vocos.
- `stream`: frame-by-frame encode/decode (80 ms); `losses`: Eq. 1-5 and the discriminators.
- `teacher`: the frozen semantic teacher; `data`: the corpus builder and loader; `train`, `cli`, `bench`.
"""

from mio.talker.codec.config import BITRATE, FRAME_RATE, HOP, SAMPLE_RATE, CodecConfig
from mio.talker.codec.model import KodamaCodec

__all__ = ["BITRATE", "FRAME_RATE", "HOP", "SAMPLE_RATE", "CodecConfig", "KodamaCodec"]
