"""Every metric of the paper's §7.1, implemented once.

    talker    STOI, PESQ-NB/WB, SIM, WER/CER, DNSMOS, UTMOS (model file given)
    face      LVE, MHD, FDD, PDD, JDD, F-FID, P-FID
    body      R-precision@k, FID, MM-Dist, Diversity, Peak Jerk, AUJ
    render    SSIM, PSNR, LPIPS / CLIP / FID / FVD (feature functions or model files given)
    thinker   CharacterBox score aggregation, TT, RT
    iis       S_cog, S_aco, S_fac, S_som, S_vis and their mean (§7.7.1)

Learned feature extractors (speaker embedding, T2M evaluator, LPIPS/CLIP/Inception/I3D networks,
UTMOS) are pluggable callables: nothing here downloads weights. `networks.load_onnx(path)` runs a
model file the user gives. `iis` is the Interactive Intelligence Score over the five dimensions.
"""

from mio.metrics.frechet import frechet_distance, gaussian_stats

__all__ = ["frechet_distance", "gaussian_stats"]
