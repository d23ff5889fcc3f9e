"""FloodDiffusion (paper §4): streaming, text-editable body motion.

config (presets) · vae (causal 1-D VAE, Eq. 13) · schedule (Eq. 10-12, 14-15) · dit (velocity DiT with
frame-wise text masks) · text (MiniLM / T5) · stream (§4.2.5) · backend (`FloodBody`) · eval (T2M
metrics, jerk) · train (`mio train body`) · cli (`mio body generate`, `mio bench body`).
"""
