"""Looks: the shipped presets differ, and a character pack can change one (identity = phenotype + appearance)."""

import numpy as np
import pytest

from mio.core.config import RenderConfig
from mio.core.errors import ConfigError
from mio.core.layouts import ARKIT52
from mio.render.avatar import ASSET_VERSION, LOOKS, asset_path, look_from_spec


def test_presets_and_custom_looks():
    assert len(LOOKS) >= 2 and look_from_spec("casual") == "casual"
    name = look_from_spec({"look": "casual", "phenotype": {"height": 0.3}, "shirt": [0.1, 0.6, 0.2]})
    assert name.startswith("casual-") and name == look_from_spec({"look": "casual", "shirt": [0.1, 0.6, 0.2],
                                                                 "phenotype": {"height": 0.3}})
    look = LOOKS[name]
    assert look.phenotype["height"] == 0.3 and look.phenotype["gender"] == LOOKS["casual"].phenotype["gender"]
    assert look.shirt == (0.1, 0.6, 0.2) and asset_path(name).name == f"anny_{name}_v{ASSET_VERSION}.npz"
    assert look_from_spec({"look": "default"}) == "default"
    for bad in ("nobody", {"look": "default", "wings": 2}, {"phenotype": {"height": 2.0}}, {"skin": [1, 2]}):
        with pytest.raises(ConfigError):
            look_from_spec(bad)


@pytest.mark.slow
def test_the_two_shipped_looks_render_differently():
    pytest.importorskip("anny")
    pytest.importorskip("moderngl")
    from mio.render.raster import AnnyRenderer

    images = {}
    for look in ("default", "casual"):
        with AnnyRenderer(RenderConfig(width=96, height=96, look=look)) as r:
            images[look] = r.render(ARKIT52.zeros(), None).astype(int)
            assert r.asset.look == look
    assert np.abs(images["default"] - images["casual"]).sum(-1).mean() > 30
