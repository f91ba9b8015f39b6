// Sky radiance along the pixel's ray: zenith/horizon gradient, sun disc and glow, procedural clouds (linear RGB).
uniform mat3 u_R_world_camera;   // rotation of the optical frame in the world (z up)
uniform vec3 u_intrinsics;       // f, cu, cv (pixels, pixel centres at integers)
uniform vec3 u_sun_dir;
uniform vec3 u_sun_rgb;
uniform vec3 u_zenith_rgb;
uniform vec3 u_horizon_rgb;
uniform float u_cloud_cover;
uniform float u_cloud_seed;

layout(location = 0) out vec4 out_color;
layout(location = 1) out float out_depth;

float hash2(vec2 p) { return fract(sin(dot(p, vec2(127.1, 311.7))) * 43758.5453); }
float value_noise(vec2 p) {
    vec2 i = floor(p), f = fract(p);
    vec2 w = f * f * (3.0 - 2.0 * f);
    return mix(mix(hash2(i), hash2(i + vec2(1, 0)), w.x), mix(hash2(i + vec2(0, 1)), hash2(i + vec2(1, 1)), w.x), w.y);
}

void main() {
    // GL window row 0 is image row 0 (the projection flips y), so v = gl_FragCoord.y - 0.5
    vec2 uv = gl_FragCoord.xy - 0.5;
    vec3 ray_camera = vec3((uv.x - u_intrinsics.y) / u_intrinsics.x, (uv.y - u_intrinsics.z) / u_intrinsics.x, 1.0);
    vec3 dir = normalize(u_R_world_camera * ray_camera);
    float up = max(dir.z, 0.0);
    vec3 sky = mix(u_horizon_rgb, u_zenith_rgb, pow(up, 0.45));
    float cos_sun = dot(dir, u_sun_dir);
    sky += u_sun_rgb * (0.25 * pow(max(cos_sun, 0.0), 12.0) + 40.0 * smoothstep(0.99985, 0.99995, cos_sun));
    // clouds on a plane 1 km up
    vec2 p = dir.xy / max(dir.z, 0.03) * 1.2 + u_cloud_seed;
    float c = 0.5 * value_noise(p) + 0.25 * value_noise(p * 2.1) + 0.125 * value_noise(p * 4.3)
            + 0.0625 * value_noise(p * 8.7);
    float cover = smoothstep(0.62 - 0.5 * u_cloud_cover, 0.9 - 0.3 * u_cloud_cover, c) * smoothstep(0.0, 0.12, dir.z);
    vec3 cloud = u_horizon_rgb * 1.15 + u_sun_rgb * 0.12 * (0.5 + 0.5 * cos_sun) * (1.0 - u_cloud_cover);
    sky = mix(sky, cloud * (0.75 + 0.35 * c), cover * (0.85 - 0.35 * u_cloud_cover));
    out_color = vec4(sky, 1.0);
    out_depth = 0.0;  // no surface: the reader turns 0 into inf
}
