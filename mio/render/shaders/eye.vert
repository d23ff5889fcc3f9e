// The eyeballs, lit per pixel: passes world position, normal and eye-local coordinates.
in vec2 in_eye;
out vec3 v_pos;
out vec3 v_normal;
out vec3 v_color;
out vec2 v_eye;
flat out int v_mat;
void main() {
    mat4 skin = skin_matrix();
    vec4 world = skin * vec4(in_pos, 1.0);
    v_pos = world.xyz;
    v_normal = mat3(skin) * in_normal;
    v_color = in_color.rgb * in_color.rgb;   // sRGB -> linear (gamma 2)
    v_mat = int(in_color.a + 0.5);
    v_eye = in_eye;
    gl_Position = view_proj * world;
}
