import dataclasses
import json

import numpy as np
import pytest

from mio.core import registry
from mio.core.config import MioConfig, load_config, parse_overrides
from mio.core.errors import BackendError, ConfigError
from mio.core.frames import BodyFrame, FaceFrame, Interrupt, SystemFrame
from mio.core.layouts import ARKIT52, ARKIT_BLENDSHAPES, FLAME112, HUMANML3D, HUMANML3D_PARENTS


def test_layouts_have_the_paper_sizes_and_named_slices():
    assert ARKIT52.dim == 61 and FLAME112.dim == 112 and HUMANML3D.dim == 263
    assert ARKIT52.slice("head") == slice(52, 55)
    assert FLAME112.slice("jaw") == slice(100, 103)
    assert HUMANML3D.slice("ric") == slice(4, 67)
    assert HUMANML3D.slice("rot6d") == slice(67, 193)
    assert HUMANML3D.slice("local_vel") == slice(193, 259)
    assert HUMANML3D.slice("foot_contact") == slice(259, 263)
    assert len(set(ARKIT_BLENDSHAPES)) == 52
    assert len(HUMANML3D_PARENTS) == 22 and all(p < i for i, p in enumerate(HUMANML3D_PARENTS))
    with pytest.raises(KeyError, match="no part"):
        ARKIT52.slice("tail")


def test_layout_check_rejects_bad_values():
    with pytest.raises(ValueError, match="61 values"):
        ARKIT52.check(np.zeros(60))
    with pytest.raises(ValueError, match="NaN"):
        ARKIT52.check(np.full(61, np.nan))
    with pytest.raises(ValueError, match="263"):
        BodyFrame(features=np.zeros(262), joints=np.zeros((22, 3)))


def test_frames_carry_time_session_and_layout():
    f = FaceFrame(values=ARKIT52.zeros(), pts=1.5, session_id="s1")
    assert f.pts == 1.5 and f.session_id == "s1" and f.spec is ARKIT52
    assert f.part("eye_left").shape == (3,)
    assert isinstance(Interrupt(), SystemFrame)


def test_config_defaults_are_the_embedded_tier_and_frozen():
    cfg = MioConfig()
    assert (cfg.thinker.backend, cfg.talker.backend, cfg.face.backend, cfg.body.backend, cfg.render.backend) == (
        "llama", "hibari", "procedural", "procedural", "anny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.render.width = 3  # type: ignore[misc]


def test_config_overrides_from_file_and_cli(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("talker:\n  backend: piper\nrender:\n  width: 256\n")
    cfg = load_config(p, ["render.height=128", "thinker.temperature=0.2", "talker.align=false", "thinker.url=none"])
    assert cfg.talker.backend == "piper" and cfg.render.width == 256 and cfg.render.height == 128
    assert cfg.thinker.temperature == 0.2 and cfg.talker.align is False and cfg.thinker.url is None
    j = tmp_path / "c.json"
    j.write_text(json.dumps({"face": {"seed": 3}}))
    assert load_config(j).face.seed == 3


@pytest.mark.parametrize(
    "override, message",
    [("render.widht=3", "unknown config key 'render.widht'"),
     ("render.width=big", "not a valid int"),
     ("render=3", "is a section"),
     ("nokey", "section.key=value")],
)
def test_config_errors_name_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("talker: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(bad)
    assert parse_overrides(["a.b=c=d"]) == {"a": {"b": "c=d"}}


def test_registry_resolves_by_name_and_refuses_unknown():
    assert "hibari" in registry.names("talker") and "anny" in registry.names("render")
    with pytest.raises(BackendError, match="choose one of"):
        registry.resolve("talker", "nope")
    with pytest.raises(BackendError, match="unknown module"):
        registry.resolve("smell", "x")
    registry.register("talker", "broken", "mio.no_such_module:X")
    with pytest.raises(BackendError, match="not installed"):
        registry.resolve("talker", "broken")
