// A vertical grey gradient with a soft vignette.
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
