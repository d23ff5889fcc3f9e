"""The renderer in its own process: the same frames as in-process, errors that keep it alive, a
clear error when it dies, and no `__main__` guard needed in the caller's script."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mio.core.config import RenderConfig
from mio.core.errors import BackendError, ConfigError, InputError
from mio.core.layouts import ARKIT52, blendshape_index

pytestmark = pytest.mark.slow
CFG = RenderConfig(width=160, height=160)


@pytest.fixture(scope="module")
def both():
    pytest.importorskip("moderngl")
    from mio.runtime.render_process import RenderProcess, create_renderer

    local, remote = create_renderer("anny", CFG), RenderProcess("anny", CFG)
    yield local, remote
    local.close()
    remote.close()


def test_frames_equal_the_in_process_renderer(both):
    from mio.render.retarget import relaxed_joints

    local, remote = both
    assert (remote.width, remote.height) == (160, 160)
    face = ARKIT52.zeros()
    face[blendshape_index("jawOpen")] = 0.7
    joints = relaxed_joints(local.rig)
    joints[20] += [0.1, 0.3, 0.0]  # a wrist up
    cam = local.preset_camera("upper_body")
    for args in ((face, None, None), (face, joints, cam)):
        a, b = local.render(*args), remote.render(*args)
        assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
        assert np.array_equal(a, b)
    wide = type(cam).look_at((0, 1.5, 2.5), (0, 1.4, 0), width=240, height=120)  # another size: a new buffer
    assert np.array_equal(local.render(face, joints, wide), remote.render(face, joints, wide))


def test_bad_input_is_the_renderers_error_and_the_process_lives_on(both):
    _, remote = both
    with pytest.raises(InputError, match="arkit52"):
        remote.render(np.zeros(5), None)
    with pytest.raises(InputError, match="NaN"):
        remote.render(np.full(ARKIT52.dim, np.nan), None)
    assert remote.render(ARKIT52.zeros(), None).shape == (160, 160, 3)


def test_looks_are_added_and_alternated_over_the_socket(both):
    local, remote = both
    nemo_l, nemo_r = local.add_look("nemo"), remote.add_look("nemo")
    assert nemo_l == nemo_r == "nemo" and remote.add_look({"look": "nemo"}) == "nemo"  # idempotent
    face = ARKIT52.zeros()
    for look in (nemo_r, None, nemo_r, None):  # switching looks frame by frame
        assert np.array_equal(remote.render(face, None, look=look), local.render(face, None, look=look))
    assert not np.array_equal(remote.render(face, None, look="nemo"), remote.render(face, None))
    with pytest.raises(ConfigError, match="avatar.beard"):
        remote.add_look({"look": "nemo", "beard": "long"})
    with pytest.raises(InputError, match="add_look"):
        remote.render(face, None, look="ned")
    assert remote.render(face, None, look="nemo").shape == (160, 160, 3)  # still alive


def test_the_render_thread_adds_and_alternates_looks_like_the_renderer(both):
    import threading

    from mio.runtime.render_process import create_renderer
    from mio.runtime.session import RenderWorker

    local, _ = both
    made_on = []

    def factory():
        made_on.append(threading.get_ident())
        return create_renderer("anny", CFG)

    worker = RenderWorker(factory)
    try:
        assert made_on[0] != threading.get_ident()  # the GL context lives on the worker's thread
        assert worker.add_look("nemo") == "nemo" == worker.add_look({"look": "nemo"})
        assert worker.default_look == local.default_look
        face = ARKIT52.zeros()
        for look in ("nemo", None, "nemo", None):
            assert np.array_equal(worker.render(face, None, look=look), local.render(face, None, look=look))
        with pytest.raises(InputError, match="add_look"):
            worker.render(face, None, look="ned")
    finally:
        worker.close()


def test_a_render_process_that_dies_is_started_again_and_a_closed_one_refuses():
    from mio.runtime.render_process import RenderProcess

    r = RenderProcess("anny", CFG, look_spec="conseil")
    assert r.default_look == "conseil" and r.add_look("nemo") == "nemo"
    first, nemo = r.render(ARKIT52.zeros(), None), r.render(ARKIT52.zeros(), None, look="nemo")
    r._proc.kill()  # as a crash in the GL driver would
    r._proc.wait()
    assert np.array_equal(r.render(ARKIT52.zeros(), None), first) and r.restarts == 1
    assert np.array_equal(r.render(ARKIT52.zeros(), None, look="nemo"), nemo)  # its looks came back
    r.close()
    with pytest.raises(RuntimeError, match="closed"):
        r.render(ARKIT52.zeros(), None)


def test_a_renderer_that_cannot_start_is_a_clear_error():
    from mio.runtime.render_process import RenderProcess

    with pytest.raises(BackendError, match="unknown|render"):
        RenderProcess("no-such-renderer", CFG)


def test_a_script_without_a_main_guard_can_render(tmp_path):
    """multiprocessing's spawn would re-run this script in the child and fail; ours does not."""
    script = tmp_path / "script.py"
    script.write_text(
        "from mio.core.config import RenderConfig\n"
        "from mio.core.layouts import ARKIT52\n"
        "from mio.runtime.render_process import RenderProcess\n"
        "r = RenderProcess('anny', RenderConfig(width=64, height=64))\n"
        "print(r.render(ARKIT52.zeros(), None).shape)\n"
        "r.close()\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "(64, 64, 3)"
