"""The embedded avatar: the `anny` body model (docs/architecture.md §2) exported once per look into a compact asset.

A full anny forward pass (warp skinning) costs 17-30 ms, too slow per frame, so we pose the mesh
ourselves (mio.render.pose): anny runs *once* per look (mio.render.build), what posing needs is
baked into a plain `.npz` (mio.render.asset) and loaded in milliseconds afterwards:

    asset = load_avatar(resolve_look({"look": "nemo"}))   # builds on first use (~1 min), then < 0.1 s
    asset.vertices, asset.triangles, asset.blendshape_deltas, ...
"""

from __future__ import annotations

from mio.core.errors import BackendError
from mio.render.asset import AvatarAsset, asset_path, read_asset
from mio.render.build import build_avatar
from mio.render.looks import Look, resolve_look


def load_avatar(look: str | dict | Look = "default", cache_dir: str | None = None) -> AvatarAsset:
    """The prepared asset for `look` (a preset name, a spec or a Look); builds and caches it with
    anny on first use."""
    spec = resolve_look(look)
    path = asset_path(spec, cache_dir)
    if not path.is_file():
        build_avatar(spec, cache_dir)
    try:
        return read_asset(path, spec.name)
    except (OSError, ValueError, KeyError) as e:
        raise BackendError(f"avatar asset {path} is unreadable ({e}); delete it to rebuild") from e
