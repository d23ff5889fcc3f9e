"""The embedded renderer: the anny avatar rasterised with moderngl on Mesa llvmpipe (EGL, no GPU).

Per frame, on the CPU: the non-zero ARKit weights blend the face vertices (only the prefix of the
vertex buffer that blendshapes move is rewritten), the body joints are retargeted onto the rig and
forward kinematics gives one matrix per bone. On the "GPU": linear-blend skinning in the vertex
shader (bone matrices as a uniform array), three-point lighting with soft skin shading and eyes
with an iris drawn from eye-local coordinates, MSAA, and one RGB readback.

    r = AnnyRenderer(RenderConfig())
    rgb = r.render(face, joints, camera)     # face (61,) arkit52, joints (22, 3) or None
    r.close()
"""

from __future__ import annotations

import numpy as np

from mio.body.retarget import Retargeter, Rig, axis_angle_to_matrix, skinning_matrices
from mio.core.config import RenderConfig
from mio.core.errors import BackendError, InputError
from mio.core.layouts import ARKIT52, blendshape_index
from mio.render.avatar import LOOKS, MAT_EYE, AvatarAsset, load_avatar
from mio.render.base import Renderer
from mio.render.camera import Camera, camera_preset

HEAD_SPLIT = (("neck02", 0.4), ("head", 0.6))  # share of the face's head rotation per bone
EYE_LOOK_RANGE = (0.45, 0.35)  # radians of gaze per unit eyeLook weight: (horizontal, vertical)

_VERTEX = """
#version 330
uniform mat4 bones[NUM_BONES];
uniform mat4 view_proj;
in vec3 in_pos;
in vec3 in_normal;
in vec4 in_color;     // rgb + material id
in vec2 in_eye;
in uvec4 in_bones;
in vec4 in_weights;
out vec3 v_pos;
out vec3 v_normal;
out vec3 v_color;
out vec2 v_eye;
flat out int v_mat;
void main() {
    mat4 skin = bones[in_bones.x] * in_weights.x + bones[in_bones.y] * in_weights.y
              + bones[in_bones.z] * in_weights.z + bones[in_bones.w] * in_weights.w;   // linear-blend skinning
    vec4 world = skin * vec4(in_pos, 1.0);
    v_pos = world.xyz;
    v_normal = mat3(skin) * in_normal;
    v_color = in_color.rgb * in_color.rgb;   // sRGB -> linear (gamma 2)
    v_mat = int(in_color.a + 0.5);
    v_eye = in_eye;
    gl_Position = view_proj * world;
}
"""

# Three-point lighting kept cheap for llvmpipe: wrapped diffuse from key and fill, one specular
# lobe (key), a rim term and a sky/ground ambient. Per-material (wrap, specular, shininess, ambient).
_FRAGMENT = """
#version 330
uniform vec3 cam_pos;
uniform vec3 key_dir;    // directions *towards* the lights, world space
uniform vec3 fill_dir;
uniform vec3 rim_dir;
uniform vec3 iris_color; // linear
uniform vec4 materials[NUM_MATERIALS];
in vec3 v_pos;
in vec3 v_normal;
in vec3 v_color;
in vec2 v_eye;
flat in int v_mat;
out vec4 f_color;

void main() {
    vec3 N = normalize(v_normal);
    vec3 V = normalize(cam_pos - v_pos);
    float ndv = dot(N, V);
    if (ndv < 0.0) { N = -N; ndv = -ndv; }   // inner surfaces (mouth) seen from inside
    vec4 m = materials[v_mat];
    vec3 base = v_color;
    if (v_mat == MAT_EYE) {
        float r = length(v_eye);                       // angle from the gaze axis, radians
        float in_iris = 1.0 - smoothstep(0.40, 0.43, r);
        vec3 iris = iris_color * (0.7 + 0.6 * smoothstep(0.12, 0.40, r)) * (1.0 - 0.6 * smoothstep(0.33, 0.42, r));
        base = mix(base, iris, in_iris);
        base = mix(base, vec3(0.005), 1.0 - smoothstep(0.15, 0.17, r));  // pupil
    }
    float kd = dot(N, key_dir);
    float fd = dot(N, fill_dir);
    float dk = max((kd + m.x) / (1.0 + m.x), 0.0);
    float df = max((fd + m.x) / (1.0 + m.x), 0.0);
    vec3 scatter = vec3(0.20, 0.05, 0.03) * (dk - max(kd, 0.0)) * step(0.01, m.x);  // warm terminator on skin
    vec3 H = normalize(key_dir + V);
    float spec = m.y * pow(max(dot(N, H), 0.0), m.z) * step(0.0, kd) * (m.z + 8.0) * 0.02;
    float rim = (1.0 - ndv) * (1.0 - ndv) * (1.0 - ndv) * max(dot(N, rim_dir) * 0.5 + 0.5, 0.0);
    vec3 ambient = mix(vec3(0.10, 0.09, 0.085), vec3(0.22, 0.23, 0.26), 0.5 + 0.5 * N.y) * m.w;
    vec3 diffuse = vec3(1.00, 0.95, 0.88) * 1.55 * dk + vec3(0.75, 0.85, 1.00) * 0.45 * df + scatter;
    vec3 color = base * (ambient + diffuse * m.w) + vec3(1.0, 0.96, 0.9) * spec * m.w
               + rim * 0.3 * (0.25 + base) * m.w;
    color = color / (1.0 + 0.25 * color);            // gentle highlight roll-off
    f_color = vec4(sqrt(clamp(color, 0.0, 1.0)), 1.0);   // linear -> sRGB (gamma 2)
}
"""

# (wrap, specular, shininess, light scale) per material id, in mio.render.avatar's MAT_* order:
# skin, lips, hair, brow, eye, mouth, shirt, trousers, shoes.
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
    ],
    dtype=np.float32,
)

_BG_VERTEX = """
#version 330
in vec2 in_xy;
out float v_y;
out vec2 v_xy;
void main() { v_y = in_xy.y; v_xy = in_xy; gl_Position = vec4(in_xy, 0.0, 1.0); }
"""
_BG_FRAGMENT = """
#version 330
uniform float flip;
in float v_y;
in vec2 v_xy;
out vec4 f_color;
void main() {
    float t = clamp(0.5 + 0.5 * v_y * flip, 0.0, 1.0);   // 1 at the top of the image
    vec3 c = mix(vec3(0.56, 0.58, 0.60), vec3(0.80, 0.82, 0.84), t);
    c *= 1.0 - 0.18 * dot(v_xy, v_xy) * 0.5;             // soft vignette
    f_color = vec4(c, 1.0);
}
"""


def _shader_defines(src: str, **values: int) -> str:
    for k, v in values.items():
        src = src.replace(k, str(v))
    return src


class AnnyRenderer(Renderer):
    """The anny avatar on moderngl/llvmpipe. One instance per process is enough; not thread-safe."""

    def __init__(self, config: RenderConfig | None = None) -> None:
        config = config or RenderConfig()
        if config.look not in LOOKS:
            raise InputError(f"unknown avatar look {config.look!r}; available: {', '.join(sorted(LOOKS))}")
        if config.width <= 0 or config.height <= 0:
            raise InputError(f"render size must be positive, got {config.width}x{config.height}")
        self.config = config
        self.width, self.height = config.width, config.height
        self.asset: AvatarAsset = load_avatar(config.look, config.cache_dir)
        a = self.asset
        self.rig = Rig(a.bone_names, a.bone_parents, a.bone_heads.astype(np.float64))
        self._retarget = Retargeter(self.rig)
        self._head_bones = [(self.rig.index(b), f) for b, f in HEAD_SPLIT]
        self._eye_bones = (self.rig.index("eye.L"), self.rig.index("eye.R"))
        self._look_idx = {
            k: blendshape_index(k)
            for k in (
                "eyeLookInLeft",
                "eyeLookOutLeft",
                "eyeLookUpLeft",
                "eyeLookDownLeft",
                "eyeLookInRight",
                "eyeLookOutRight",
                "eyeLookUpRight",
                "eyeLookDownRight",
            )
        }
        self._rest_face = a.vertices[: a.n_face_vertices].copy()
        self._rest_face_n = a.normals[: a.n_face_vertices].copy()
        nf = a.n_face_vertices
        self._deltas = np.ascontiguousarray(a.blendshape_deltas.reshape(52, nf * 3))
        self._ndeltas = np.ascontiguousarray(a.normal_deltas.reshape(52, nf * 3))
        self._last_weights: np.ndarray | None = None
        self.default_camera = self.preset_camera(config.camera)

        try:
            import moderngl
        except ImportError as e:
            raise BackendError(f"the renderer needs moderngl (pip install 'mio[embedded]'): {e}") from e
        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as e:  # noqa: BLE001 - any EGL failure means the same thing to the user
            raise BackendError(
                f"cannot create an EGL OpenGL context ({e}); install Mesa EGL: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri"
            ) from e
        self._moderngl = moderngl
        ctx = self.ctx
        self.prog = ctx.program(
            vertex_shader=_shader_defines(_VERTEX, NUM_BONES=len(a.bone_names)),
            fragment_shader=_shader_defines(_FRAGMENT, MAT_EYE=MAT_EYE, NUM_MATERIALS=len(MATERIAL_PARAMS)),
        )
        self.prog["materials"].write(MATERIAL_PARAMS.tobytes())
        color = np.concatenate([a.colors, a.materials[:, None].astype(np.float32)], axis=1)
        self._vbo_pos = ctx.buffer(a.vertices.astype("f4").tobytes(), dynamic=True)
        self._vbo_nrm = ctx.buffer(a.normals.astype("f4").tobytes(), dynamic=True)
        self._vbo_col = ctx.buffer(color.astype("f4").tobytes())
        self._vbo_eye = ctx.buffer(a.eye_coords.astype("f4").tobytes())
        self._vbo_bi = ctx.buffer(np.ascontiguousarray(a.bone_indices, dtype=np.uint8).tobytes())
        self._vbo_bw = ctx.buffer(a.bone_weights.astype("f4").tobytes())
        self._ibo = ctx.buffer(a.triangles.astype("u4").tobytes())
        self.vao = ctx.vertex_array(
            self.prog,
            [
                (self._vbo_pos, "3f", "in_pos"),
                (self._vbo_nrm, "3f", "in_normal"),
                (self._vbo_col, "4f", "in_color"),
                (self._vbo_eye, "2f", "in_eye"),
                (self._vbo_bi, "4u1", "in_bones"),
                (self._vbo_bw, "4f", "in_weights"),
            ],
            index_buffer=self._ibo,
            index_element_size=4,
        )
        self.prog["iris_color"].value = tuple(float(c) ** 2 for c in LOOKS[config.look].iris)
        self.bg_prog = ctx.program(vertex_shader=_BG_VERTEX, fragment_shader=_BG_FRAGMENT)
        tri = np.array([[-1, -1], [3, -1], [-1, 3]], "f4")
        self._bg_vbo = ctx.buffer(tri.tobytes())
        self.bg_vao = ctx.vertex_array(self.bg_prog, [(self._bg_vbo, "2f", "in_xy")])
        self.bg_prog["flip"].value = -1.0  # images are drawn upside down so the readback is top-first
        self._targets: dict[tuple[int, int], tuple] = {}
        self._closed = False

    # ------------------------------------------------------------------ cameras
    def preset_camera(self, name: str, width: int | None = None, height: int | None = None) -> Camera:
        """A named framing ("portrait", "upper_body", "full_body") sized to this avatar."""
        lm = self.asset.landmarks
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
    def _check_face(self, face: np.ndarray) -> np.ndarray:
        face = np.asarray(face)
        if face.shape != (ARKIT52.dim,):
            raise InputError(
                f"face must be one arkit52 frame of shape ({ARKIT52.dim},) (52 blendshapes + head 3 + eyes 2x3), got {face.shape}"
            )
        if not np.all(np.isfinite(face)):
            raise InputError("face parameters contain NaN or inf")
        return face.astype(np.float64)

    def _update_face(self, weights: np.ndarray) -> None:
        """Blend the face vertices and normals; rewrites only the blendshape prefix of the buffers."""
        if self._last_weights is not None and np.array_equal(weights, self._last_weights):
            return
        nz = np.flatnonzero(weights)
        w = weights[nz].astype(np.float32)
        pos = self._rest_face.ravel() + w @ self._deltas[nz]  # (nf*3,)
        nrm = self._rest_face_n.ravel() + w @ self._ndeltas[nz]
        self._vbo_pos.write(pos.astype("f4").tobytes())
        self._vbo_nrm.write(nrm.astype("f4").tobytes())
        self._last_weights = weights.copy()

    def pose(self, face: np.ndarray, joints: np.ndarray | None) -> np.ndarray:
        """Validate, blend the face, and return the (B, 4, 4) skinning matrices for this frame."""
        face = self._check_face(face)
        weights = np.clip(face[ARKIT52.slice("blendshapes")], 0.0, 1.0)
        rig_pose = self._retarget(joints)
        L = rig_pose.rotations
        head = face[ARKIT52.slice("head")]
        for b, f in self._head_bones:
            L[b] = L[b] @ axis_angle_to_matrix(head * f)
        g = self._look_idx
        gaze = (
            (
                weights[g["eyeLookOutLeft"]] - weights[g["eyeLookInLeft"]],
                weights[g["eyeLookDownLeft"]] - weights[g["eyeLookUpLeft"]],
            ),
            (
                weights[g["eyeLookInRight"]] - weights[g["eyeLookOutRight"]],
                weights[g["eyeLookDownRight"]] - weights[g["eyeLookUpRight"]],
            ),
        )
        for b, part, (yaw, pitch) in zip(self._eye_bones, ("eye_left", "eye_right"), gaze, strict=True):
            # ARKit semantics: eyeLook* weights also turn the eyeball (+y turns towards the
            # character's left, +x pitches down), on top of the explicit gaze rotation.
            look = np.array([pitch * EYE_LOOK_RANGE[1], yaw * EYE_LOOK_RANGE[0], 0.0])
            L[b] = L[b] @ axis_angle_to_matrix(face[ARKIT52.slice(part)] + look)
        self._update_face(weights)
        return skinning_matrices(self.rig, rig_pose)

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

    def _draw(self, camera: Camera) -> np.ndarray:
        w, h = int(camera.width), int(camera.height)
        msaa, resolve = self._target(w, h)
        ctx = self.ctx
        msaa.use()
        ctx.viewport = (0, 0, w, h)
        ctx.disable(self._moderngl.DEPTH_TEST | self._moderngl.CULL_FACE)
        msaa.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
        self.bg_vao.render(self._moderngl.TRIANGLES)
        ctx.enable(self._moderngl.DEPTH_TEST | self._moderngl.CULL_FACE)
        ctx.front_face = "cw"  # the vertical flip below mirrors the winding
        flip = np.diag([1.0, -1.0, 1.0, 1.0]).astype(
            np.float32
        )  # draw upside down: readback is then top row first
        view = camera.view_matrix().astype(np.float64)
        view_proj = flip @ camera.projection_matrix() @ view
        self.prog["view_proj"].write(view_proj.T.astype("f4").tobytes())
        R = view[:3, :3]
        cam_pos = -R.T @ view[:3, 3]
        # Lights fixed relative to the camera: key from upper left, fill from the right, rim from behind.
        for name, d in (
            ("key_dir", (-0.55, 0.55, 0.65)),
            ("fill_dir", (0.75, 0.1, 0.6)),
            ("rim_dir", (0.3, 0.6, -0.75)),
        ):
            v = R.T @ np.asarray(d)
            self.prog[name].value = tuple((v / np.linalg.norm(v)).tolist())
        self.prog["cam_pos"].value = tuple(cam_pos.tolist())
        self.vao.render(self._moderngl.TRIANGLES)
        src = msaa
        if resolve is not None:
            ctx.copy_framebuffer(resolve, msaa)
            src = resolve
        out = np.empty((h, w, 3), np.uint8)
        src.read_into(out, components=3, alignment=1)
        return out

    def _check_camera(self, camera: Camera | None) -> Camera:
        if camera is None:
            return self.default_camera
        if not isinstance(camera, Camera):
            raise InputError(f"camera must be a mio.render.camera.Camera, got {type(camera).__name__}")
        if camera.width <= 0 or camera.height <= 0:
            raise InputError(f"camera size must be positive, got {camera.width}x{camera.height}")
        return camera

    def render(self, face: np.ndarray, joints: np.ndarray | None, camera: Camera | None = None) -> np.ndarray:
        """face (61,) arkit52, joints (22, 3) HumanML3D or None -> (H, W, 3) uint8 RGB."""
        self._ensure_open()
        camera = self._check_camera(camera)
        skin = self.pose(face, joints)
        self.prog["bones"].write(skin.transpose(0, 2, 1).astype("f4").tobytes())  # column-major
        return self._draw(camera)

    def render_batch(
        self, face: np.ndarray, joints: np.ndarray | None, cameras: list[Camera]
    ) -> list[np.ndarray]:
        """The same pose seen from several cameras (posing is done once)."""
        self._ensure_open()
        cams = [self._check_camera(c) for c in cameras]
        skin = self.pose(face, joints)
        self.prog["bones"].write(skin.transpose(0, 2, 1).astype("f4").tobytes())
        return [self._draw(c) for c in cams]

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("renderer is closed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for msaa, resolve in self._targets.values():
            msaa.release()
            if resolve is not None:
                resolve.release()
        self.ctx.release()

    def __enter__(self) -> AnnyRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
