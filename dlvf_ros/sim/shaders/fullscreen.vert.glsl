// Full-screen triangle at the far plane: the sky is drawn after the scene where nothing else is (depth test
// less-or-equal against the cleared depth 1); the camera pass draws it with no depth test.
void main() {
    vec2 corner = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
    gl_Position = vec4(corner * 2.0 - 1.0, 1.0, 1.0);
}
