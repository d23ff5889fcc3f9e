// Three-point lighting kept cheap for llvmpipe: wrapped diffuse from key and fill, one specular lobe
// (key), a rim term and a sky/ground ambient; per material (wrap, specular, shininess, light scale).
uniform vec3 cam_pos;
uniform vec3 key_dir;    // directions *towards* the lights, world space
uniform vec3 fill_dir;
uniform vec3 rim_dir;
uniform vec4 materials[NUM_MATERIALS];

vec3 shade(vec3 N, vec3 V, vec3 base, vec4 m) {   // linear colour; N, V unit vectors
    float ndv = dot(N, V);
    if (ndv < 0.0) { N = -N; ndv = -ndv; }   // inner surfaces (mouth) seen from inside
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
    return base * (ambient + diffuse * m.w) + vec3(1.0, 0.96, 0.9) * spec * m.w
           + rim * 0.3 * (0.25 + base) * m.w;
}

vec4 to_srgb(vec3 color) {
    color = color / (1.0 + 0.25 * color);            // gentle highlight roll-off
    return vec4(sqrt(clamp(color, 0.0, 1.0)), 1.0);  // linear -> sRGB (gamma 2)
}
