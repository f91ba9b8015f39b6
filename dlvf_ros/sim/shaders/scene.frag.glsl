// Textured, lit surface: materials, sun with shadow map, sky/ground ambient, two headlights, fog, camera response.
uniform sampler2DArray u_materials;   // layers: 0 grass, 1 dirt, 2 rock, 3 bark, 4 leaves (sRGB)
uniform sampler2D u_splat;            // world-xy map: r dirt, g dry grass, b damp, a clumps
uniform vec4 u_splat_transform;       // uv = xy * scale + offset  (xy: scale, zw: offset)
uniform sampler2DShadow u_shadow_map;
uniform float u_shadow_strength;
uniform vec3 u_sun_dir;
uniform vec3 u_sun_rgb;
uniform vec3 u_ambient_sky_rgb;
uniform vec3 u_ambient_ground_rgb;
uniform vec3 u_fog_rgb;
uniform float u_fog_density;
uniform vec3 u_camera_pos;
uniform vec3 u_lamp_pos[2];
uniform vec3 u_lamp_dir[2];
uniform vec3 u_lamp_rgb;
uniform vec2 u_lamp_cone;             // cos(outer), cos(inner) half-angles

in vec3 v_world;
in vec3 v_normal;
in vec3 v_tint;
flat in int v_material;
in float v_depth_m;
in vec3 v_shadow;

layout(location = 0) out vec4 out_color;
layout(location = 1) out float out_depth;

vec3 srgb_to_linear(vec3 c) { return c * c; }  // gamma 2 (matches camera_response)

// planar projection along the dominant normal axis (one texture fetch; blending three costs too much on a CPU)
vec3 dominant_planar(vec3 p, vec3 n, float layer, float tile_m) {
    vec3 a = abs(n);
    vec2 uv = a.z > max(a.x, a.y) ? p.xy : (a.x > a.y ? p.yz : p.xz);
    return texture(u_materials, vec3(uv / tile_m, layer)).rgb;
}

vec3 albedo(vec3 n) {
    if (v_material == 0) {   // terrain: grass and dirt blended by the splat map
        vec4 splat = texture(u_splat, v_world.xy * u_splat_transform.xy + u_splat_transform.zw);
        vec2 q = mat2(0.8, -0.6, 0.6, 0.8) * v_world.xy;
        // negative LOD bias: sharper ground at grazing angles (anisotropic filtering is too slow on llvmpipe)
        vec3 c = texture(u_materials, vec3(v_world.xy / 1.7, 0.0), -0.7).rgb;
        c *= mix(vec3(1.0), vec3(1.4, 1.15, 0.65), 0.7 * splat.g);
        if (splat.r > 0.004) {
            vec3 dirt = texture(u_materials, vec3(q / 1.3, 1.0), -0.7).rgb;
            c = mix(c, dirt, splat.r);
        }
        c *= (1.0 - 0.35 * splat.b) * (0.7 + 0.6 * splat.a);
        return srgb_to_linear(clamp(c, 0.0, 1.0));
    }
    float tile = v_material == 2 ? 1.1 : (v_material == 3 ? 0.9 : 0.8);
    return srgb_to_linear(dominant_planar(v_world, n, float(v_material), tile)) * v_tint;
}

void main() {
    vec3 n = normalize(v_normal);
    vec3 base = albedo(n);
    bool foliage = v_material == 4;
    float n_dot_sun = dot(n, u_sun_dir);
    float direct = foliage ? clamp((n_dot_sun + 0.35) / 1.35, 0.0, 1.0) : max(n_dot_sun, 0.0);
    float lit = 1.0;
    bool in_map = all(greaterThan(v_shadow, vec3(0.0))) && all(lessThan(v_shadow, vec3(1.0)));
    if (u_shadow_strength > 0.0 && direct > 0.0 && in_map) {
        lit = 1.0 - u_shadow_strength * (1.0 - texture(u_shadow_map, v_shadow));
    }
    vec3 irradiance = u_sun_rgb * direct * lit;
    irradiance += mix(u_ambient_ground_rgb, u_ambient_sky_rgb, 0.5 + 0.5 * n.z);
    for (int k = 0; k < 2 && u_lamp_rgb.r > 0.0; ++k) {
        vec3 to_lamp = u_lamp_pos[k] - v_world;
        float d2 = dot(to_lamp, to_lamp);
        vec3 l = to_lamp * inversesqrt(d2);
        float cone = smoothstep(u_lamp_cone.x, u_lamp_cone.y, dot(-l, u_lamp_dir[k]));
        irradiance += u_lamp_rgb * cone * max(dot(n, l), foliage ? 0.2 : 0.0) / (d2 + 0.2);
    }
    vec3 radiance = base * irradiance;
    float fog = exp(-u_fog_density * distance(v_world, u_camera_pos));
    radiance = mix(u_fog_rgb, radiance, fog);
    out_color = vec4(camera_response(radiance), 1.0);
    out_depth = v_depth_m;
}
