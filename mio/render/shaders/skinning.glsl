// Linear-blend skinning: bone matrices as a uniform array, four influences per vertex.
uniform mat4 bones[NUM_BONES];
uniform mat4 view_proj;
in vec3 in_pos;
in vec3 in_normal;
in vec4 in_color;     // rgb + material id
in uvec4 in_bones;
in vec4 in_weights;

mat4 skin_matrix() {  // linear-blend skinning
    return bones[in_bones.x] * in_weights.x + bones[in_bones.y] * in_weights.y
         + bones[in_bones.z] * in_weights.z + bones[in_bones.w] * in_weights.w;
}
