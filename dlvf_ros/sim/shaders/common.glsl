// Shared by the camera passes: camera response (exposure, filmic tone curve, sRGB) and sensor noise.
uniform float u_exposure;
uniform float u_read_noise;   // std of additive noise in [0, 1] output units
uniform float u_shot_noise;   // std = u_shot_noise * sqrt(value)
uniform uint u_noise_seed;    // per frame and eye; 0 disables noise

uvec3 pcg3d(uvec3 v) {
    v = v * 1664525u + 1013904223u;
    v.x += v.y * v.z; v.y += v.z * v.x; v.z += v.x * v.y;
    v ^= v >> 16u;
    v.x += v.y * v.z; v.y += v.z * v.x; v.z += v.x * v.y;
    return v;
}

// zero-mean, unit-std noise per channel (uniform distribution: cheap and enough for sensor noise)
vec3 noise3(uvec2 pixel, uint seed) {
    uvec3 a = pcg3d(uvec3(pixel, seed));
    return (vec3(a >> 8u) / 16777216.0 - 0.5) * 3.4641016;
}

vec3 camera_response(vec3 radiance) {
    vec3 x = radiance * u_exposure;
    vec3 tone = clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0);
    vec3 value = sqrt(tone);  // display gamma 2
    if (u_noise_seed != 0u) {
        vec3 n = noise3(uvec2(gl_FragCoord.xy), u_noise_seed);
        value += n * (u_read_noise + u_shot_noise * sqrt(value));
    }
    return clamp(value, 0.0, 1.0);
}
