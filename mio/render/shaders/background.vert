// A full-screen triangle on the far plane.
in vec2 in_xy;
out float v_y;
out vec2 v_xy;
void main() { v_y = in_xy.y; v_xy = in_xy; gl_Position = vec4(in_xy, 1.0, 1.0); }  // on the far plane
