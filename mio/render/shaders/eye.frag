// Per-pixel lighting with the iris and pupil drawn from eye-local coordinates and a sharp highlight.
uniform vec3 iris_color; // linear
in vec3 v_pos;
in vec3 v_normal;
in vec3 v_color;
in vec2 v_eye;
flat in int v_mat;
out vec4 f_color;
void main() {
    vec3 base = v_color;
    if (v_mat == MAT_EYE) {
        float r = length(v_eye);                       // angle from the gaze axis, radians
        float in_iris = 1.0 - smoothstep(0.40, 0.43, r);
        vec3 iris = iris_color * (0.7 + 0.6 * smoothstep(0.12, 0.40, r)) * (1.0 - 0.6 * smoothstep(0.33, 0.42, r));
        base = mix(base, iris, in_iris);
        base = mix(base, vec3(0.005), 1.0 - smoothstep(0.15, 0.17, r));  // pupil
    }
    f_color = to_srgb(shade(normalize(v_normal), normalize(cam_pos - v_pos), base, materials[v_mat]));
}
