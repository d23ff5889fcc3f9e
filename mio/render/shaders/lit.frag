// One colour per pixel: the vertex lighting, interpolated.
in vec3 v_color;
out vec4 f_color;
void main() { f_color = to_srgb(v_color); }
