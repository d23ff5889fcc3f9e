// Control renders for AvatarDiT (§5.2.2 "SMPL-based RGB renderings"): the bare posed mesh coloured
// by its camera-space normal - shape and pose without appearance.
uniform mat3 view_rot;
out vec3 v_color;
void main() {
    mat4 skin = skin_matrix();
    vec3 n = normalize(view_rot * (mat3(skin) * in_normal));
    v_color = 0.5 + 0.5 * n;
    gl_Position = view_proj * (skin * vec4(in_pos, 1.0));
}
