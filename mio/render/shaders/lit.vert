// Every surface but the eyes, lit per vertex (the mesh is dense where it matters: ~2 mm on the face).
out vec3 v_color;     // lit, linear
void main() {
    mat4 skin = skin_matrix();
    vec4 world = skin * vec4(in_pos, 1.0);
    vec3 base = in_color.rgb * in_color.rgb;   // sRGB -> linear (gamma 2)
    vec4 m = materials[int(in_color.a + 0.5)];
    vec3 N = normalize(mat3(skin) * in_normal);
    vec3 V = normalize(cam_pos - world.xyz);
    float ndv = dot(N, V);
    // A vertex of a drawn (front-facing) triangle whose normal faces away sits on a silhouette or
    // in a fold (lip edges, nostrils, armpits): lay its normal on the silhouette. shade() would flip
    // it, which is right per pixel but per vertex smears a wrongly lit colour over whole triangles.
    if (ndv < 0.0) N = normalize(N - V * (ndv - 1e-3));
    v_color = shade(N, V, base, m);
    gl_Position = view_proj * world;
}
