"""Kodama-TTS (paper §2.2): an LLM over text tokens and Kodama codec tokens, with voice cloning.

- `model`: KodamaTTS (unified embeddings, speaker/emotion prepended, K per-codebook heads, L_TTS);
  `backbone`: the small Llama of the embedded preset; `lm`: SmolLM2's tokenizer and token table.
- `sequence`: text + audio sequence building; `curation`: DNSMOS + speaker-consistency filters;
  `speaker`: Resemblyzer speaker vectors (stand-in for CAM++).
- `train`: `mio train tts`; `voice`: the streaming `kodama` Talker backend; `cli`: `mio tts`,
  `mio bench tts`. See docs/tts.md.
"""
