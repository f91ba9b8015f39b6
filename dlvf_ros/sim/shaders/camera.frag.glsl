// The camera: linear radiance (scene pass) -> output values. Motion blur along the flow of the vehicle's motion
// during the exposure and defocus (colour only: depth is never touched), exposure, white balance, veiling glare and
// lens flare from the sun, vignetting, shot + read noise, tone curve and gamma (dlvf_ros/sim/camera.py).
// The renderer compiles one variant per camera member: CAMERA_BLUR, CAMERA_DEFOCUS, CAMERA_GLARE, CAMERA_VIGNETTE,
// CAMERA_NOISE_AFTER_TONE, CAMERA_GAMMA2, CAMERA_SATURATION and CAMERA_BLACK_LEVEL are defined (1) or not (0), and
// CAMERA_TONE is 0 filmic, 1 clip, 2 s_curve, 3 log (llvmpipe pays for code behind branches that are not taken).
uniform sampler2D u_radiance;        // linear RGB, before exposure
uniform sampler2D u_depth;           // optical z (m); 0 where sky
uniform vec3 u_intrinsics;           // f, cu, cv (pixels, pixel centres at integers)
uniform vec2 u_size;                 // width, height (pixels)
uniform float u_exposure;
uniform vec3 u_white_balance;
uniform float u_gamma;
uniform float u_contrast;
uniform float u_black_level;
uniform float u_saturation;
uniform float u_read_noise;
uniform float u_shot_noise;
uniform float u_gain;
uniform uint u_noise_seed;           // per frame and eye; 0 disables noise
uniform float u_vignetting;
uniform int u_blur_taps;             // 0: no motion blur
uniform mat4 u_start_from_now;       // camera at the start of the exposure <- camera now
uniform float u_defocus_px;          // blur circle radius far from the focus distance (0: sharp)
uniform float u_focus_m;
uniform vec3 u_sun_camera;           // unit vector towards the sun, optical frame
uniform vec3 u_sun_rgb;              // sun irradiance times its visibility (0: hidden)
uniform vec3 u_veil_rgb;             // uniform part of the veiling glare (radiance)
uniform float u_veil;
uniform float u_flare;

layout(location = 0) out vec4 out_color;

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

vec2 project(vec3 p) { return u_intrinsics.x * p.xy / p.z + u_intrinsics.yz; }


vec3 gathered_radiance(vec2 uv, ivec2 pixel) {
#if CAMERA_BLUR || CAMERA_DEFOCUS
    float z = texelFetch(u_depth, pixel, 0).r;
    vec2 flow = vec2(0.0);
    int taps = 1;
#if CAMERA_BLUR
    vec3 ray = vec3((uv - u_intrinsics.yz) / u_intrinsics.x, 1.0);
    vec4 start = u_start_from_now * (z > 0.0 ? vec4(ray * z, 1.0) : vec4(ray, 0.0));
    if (start.z > 0.05) flow = project(start.xyz) - uv;
    taps = u_blur_taps;
#endif
    vec2 across = vec2(0.0);
#if CAMERA_DEFOCUS  // two bilinear taps across the blur circle, on diagonals that alternate pixel by pixel
    float coc = u_defocus_px * (z > 0.0 ? min(abs(1.0 - u_focus_m / z), 3.0) : 1.0);
    across = coc * (((pixel.x + pixel.y) & 1) == 0 ? vec2(0.7071, 0.7071) : vec2(0.7071, -0.7071));
    taps = max(taps, 2);
#endif
    // samples along the flow at a per-pixel random phase: noise instead of ghost copies of edges
    float phase = float(pcg3d(uvec3(pixel, 0x5u)).x >> 8u) / 16777216.0;
    vec3 sum = vec3(0.0);
    for (int k = 0; k < taps; ++k) {
        vec2 pos = uv + flow * ((float(k) + phase) / float(taps)) + ((k & 1) == 0 ? across : -across);
        sum += textureLod(u_radiance, (pos + 0.5) / u_size, 0.0).rgb;
    }
    return sum / float(taps);
#else
    return texelFetch(u_radiance, pixel, 0).rgb;
#endif
}

// scattered light of a sun in or near the view: a sharp halo and a wide veil (the uniform contrast loss is
// u_veil_rgb); and ghosts of the aperture along the line from the sun through the image centre
vec3 sun_glare(vec2 uv) {
    vec3 ray = normalize(vec3((uv - u_intrinsics.yz) / u_intrinsics.x, 1.0));
    float angle2 = 2.0 * (1.0 - dot(ray, u_sun_camera));  // squared angle to the sun (rad^2, exact when small)
    vec3 glare = u_veil * u_sun_rgb * (0.8 / (1.0 + angle2 / 0.0006) + 0.3 / (1.0 + angle2 / 0.03));
    if (u_flare > 0.0 && u_sun_camera.z > 0.2) {
        vec2 sun = project(u_sun_camera);
        vec2 centre = 0.5 * u_size;
        float inside = 1.0 - smoothstep(0.0, 0.5 * u_size.x, length(max(abs(sun - centre) - centre, 0.0)));
        const float place[5] = float[5](-0.35, -0.7, 0.45, -1.25, 0.2);
        const float radius[5] = float[5](0.035, 0.06, 0.025, 0.11, 0.015);
        const vec3 tint[5] = vec3[5](vec3(0.3, 0.6, 1.0), vec3(0.5, 1.0, 0.4), vec3(1.0, 0.6, 0.3),
                                     vec3(0.6, 0.4, 1.0), vec3(1.0, 0.9, 0.6));
        for (int k = 0; k < 5; ++k) {
            vec2 ghost = centre + place[k] * (sun - centre);
            float r = radius[k] * u_size.x;
            float disc = smoothstep(r, 0.8 * r, distance(uv, ghost));
            glare += u_flare * inside * 0.05 * tint[k] * u_sun_rgb * disc;
        }
    }
    return glare;
}

vec3 tone_curve(vec3 x) {
#if CAMERA_TONE == 0  // filmic
    return clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0);
#elif CAMERA_TONE == 1  // linear, hard clip
    return clamp(x, 0.0, 1.0);
#elif CAMERA_TONE == 2  // filmic with a steeper middle
    vec3 f = clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0);
    return mix(f, f * f * (3.0 - 2.0 * f), u_contrast);
#else  // flat, log-like: white at 4x the exposure
    return clamp(log(1.0 + u_contrast * max(x, 0.0)) / log(1.0 + 4.0 * u_contrast), 0.0, 1.0);
#endif
}

void main() {
    // GL window row 0 is image row 0 (the projection flips y), so (u, v) = gl_FragCoord.xy - 0.5
    vec2 uv = gl_FragCoord.xy - 0.5;
    vec3 radiance = gathered_radiance(uv, ivec2(gl_FragCoord.xy)) + u_veil_rgb;
#if CAMERA_GLARE
    radiance += sun_glare(uv);
#endif
    vec3 x = radiance * u_exposure * u_white_balance;
#if CAMERA_VIGNETTE
    vec2 r = (uv - 0.5 * (u_size - 1.0)) / (0.5 * u_size);
    x *= 1.0 - u_vignetting * clamp(0.5 * dot(r, r), 0.0, 1.0);
#endif
    vec3 n = u_noise_seed != 0u ? noise3(uvec2(gl_FragCoord.xy), u_noise_seed) : vec3(0.0);
#if !CAMERA_NOISE_AFTER_TONE
    x += n * sqrt(u_shot_noise * u_shot_noise * u_gain * max(x, 0.0) + u_read_noise * u_read_noise * u_gain * u_gain);
#endif
    vec3 value = tone_curve(x);
#if CAMERA_GAMMA2
    value = sqrt(value);  // exact for the classic camera
#else
    value = pow(value, vec3(1.0 / u_gamma));
#endif
#if CAMERA_SATURATION
    value = clamp(mix(vec3(dot(value, vec3(0.299, 0.587, 0.114))), value, u_saturation), 0.0, 1.0);
#endif
#if CAMERA_BLACK_LEVEL
    value = u_black_level + (1.0 - u_black_level) * value;
#endif
#if CAMERA_NOISE_AFTER_TONE
    value += n * (u_read_noise + u_shot_noise * sqrt(value));
#endif
    out_color = vec4(clamp(value, 0.0, 1.0), 1.0);
}
