"""The IIS formulas (§7.7.1) against sub-scores computed by hand from the paper's tables."""

from __future__ import annotations

import pytest

from mio.bench import paper
from mio.metrics import iis
from mio.metrics.iis import AcousticInputs, CognitiveInputs, FacialInputs, SomaticInputs, VisualInputs


def test_s_fac_from_table3_unils_row():
    # LVE 5.83; listening FDD 17.12, PDD 4.75, JDD 0.98 -> mean 7.6167
    # 50 e^{-0.1749} + 50 e^{-0.152333} = 50 * 0.839538 + 50 * 0.858705 = 84.912
    assert iis.s_fac(FacialInputs(lve=5.83, fdd=17.12, pdd=4.75, jdd=0.98)) == pytest.approx(84.912, abs=1e-3)


def test_s_som_from_table5_flooddiffusion_row():
    # 50 e^{-0.114} + 50 e^{-0.2139} = 50 * 0.892258 + 50 * 0.807429 = 84.984
    assert iis.s_som(SomaticInputs(fid=0.057, pj=0.713)) == pytest.approx(84.984, abs=1e-3)


def test_s_vis_from_table6_ours_row():
    # (86.93 + 81.34 + (100 - 22.31)) / 3
    assert iis.s_vis(VisualInputs(clip=0.8693, ssim=0.8134, lpips=0.2231)) == pytest.approx(81.9867, abs=1e-4)


def test_s_cog_from_table8_and_section_7_6():
    # (20 * 4.221 + 50 * 0.908 + 50 * 0.735) / 3 = (84.42 + 45.4 + 36.75) / 3
    assert iis.s_cog(CognitiveInputs(cb=4.221, tt=0.908, rt=0.735)) == pytest.approx(55.5233, abs=1e-4)
    assert iis.s_cog(CognitiveInputs(cb=5, tt=1, rt=1)) == pytest.approx(200 / 3)  # the formula's ceiling


def test_s_aco_english_seed_tts_eval_row():
    # Table 1 Seed-TTS-Eval-EN Kodama (STOI .91, SIM .81, PESQ-WB 2.35) + Table 2 EN (3.56, 3.13, 2.50 %)
    # (91 + 81 + 52.222 + 71.2 + 62.6 + 97.5) / 6
    en = AcousticInputs(stoi=0.91, sim=0.81, pesq=2.35, utmos=3.56, dnsmos=3.13, wer=0.025)
    assert iis.s_aco([en]) == pytest.approx(75.9204, abs=1e-4)
    assert iis.s_aco([en, en]) == pytest.approx(iis.s_aco([en]))  # averaged over languages


def test_the_paper_totals_76_0_and_76_8():
    s76_0 = paper.paper_mio("76.0").scores()
    assert s76_0["aco"] == pytest.approx(72.76, abs=0.01)
    assert round(iis.iis(s76_0), 1) == 76.0  # 76.03
    s76_8 = paper.paper_mio("76.8").scores()
    assert s76_8["aco"] == pytest.approx(76.73, abs=0.01)
    assert round(iis.iis(s76_8), 1) == 76.8  # 76.83


def test_the_stated_gaps_fit_gpt4os_characterbox():
    # The previous best's S_cog is not in the paper's text; the one that makes "+8.4" (+7.8) hold must be
    # (20 * CB + 50 * TT + 50 * RT) / 3 with GPT-4o's CB 3.474 (Table 8) and TT, RT in [0, 1].
    for reading in paper.PAPER_GAPS:
        cog = paper.implied_previous_best_cog(reading)
        mean_tt_rt = (3 * cog - 20 * paper.GPT4O_CB) / 100
        assert 0.0 <= mean_tt_rt <= 1.0, (reading, cog)


def test_previous_best_rows():
    prev = paper.paper_previous_best("76.0").scores()
    assert prev["cog"] is None  # GPT-4o's TT/RT are only in Figure 17
    assert prev["fac"] == pytest.approx(75.678, abs=1e-3)  # DualTalk
    assert prev["som"] == pytest.approx(79.629, abs=1e-3)  # MotionStreamer
    assert prev["vis"] == pytest.approx(78.843, abs=1e-3)  # CHAMP


def test_iis_needs_all_five_dimensions():
    assert iis.iis({k: 50.0 for k in iis.DIMENSIONS}) == 50.0
    with pytest.raises(ValueError, match="missing"):
        iis.iis({"cog": 50.0, "aco": None})
