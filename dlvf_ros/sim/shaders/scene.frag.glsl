// Textured, lit surface (linear radiance; the camera pass makes the image): the style's materials, sun with shadow
// map, sky/ground ambient, two headlights, snow on upward faces, fog. The renderer compiles one variant per style:
// SCENE_PATCH, SCENE_TRAIL_ALIGNED, SCENE_RUTS, SCENE_TREAD, SCENE_EDGE_LINE, SCENE_SNOW, SCENE_LAMP_CUTOFF,
// SCENE_LAMP_RINGS and SCENE_APERIODIC are
// defined (1) or not (0) (llvmpipe pays for code behind branches that are not taken).
uniform sampler2DArray u_materials;   // layers: textures.py (0 ground, 1 trail, 2 rock, 3 bark, 4 leaves, 5 ground
                                      // patches, 6 man-made, 7 tufts), sRGB
uniform sampler2D u_splat;            // world-xy map: r trail, g ground patches, b damp, a clumps
uniform vec4 u_splat_transform;       // uv = xy * scale + offset  (xy: scale, zw: offset)
uniform sampler2D u_trail_coords;     // world-xy map: arc length, lateral offset (m), lateral unit vector
uniform vec4 u_trail_coords_transform;
uniform float u_tile_m[8];            // size of each material tile (m)
uniform vec3 u_patch_tint;            // ground member (textures.GroundSurface)
uniform float u_patch_tint_amount;
uniform float u_patch_amount;
uniform float u_damp;
uniform vec2 u_clumps;
uniform float u_snow;
// trail member (textures.TrailSurface) and the world's trail geometry
uniform float u_trail_half_width_m;
uniform float u_rut_depth_m;
uniform float u_tread;
uniform float u_edge_line;
uniform ivec2 u_noise_cell;           // SCENE_APERIODIC: the world's offset of the value-noise lattice
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
uniform vec3 u_lamp_up;               // up in the lamps' frame (world)
uniform float u_lamp_cutoff;          // sin of the low-beam cut-off angle over the beam axis
uniform vec2 u_lamp_rings;            // contrast, rings per degree off the beam axis

in vec3 v_world;
in vec3 v_normal;
in vec3 v_tint;
flat in int v_material;
in float v_depth_m;
in vec3 v_shadow;

layout(location = 0) out vec4 out_color;
layout(location = 1) out float out_depth;

vec3 srgb_to_linear(vec3 c) { return c * c; }  // gamma 2 (matches the classic camera)

// planar projection along the dominant normal axis (one texture fetch; blending three costs too much on a CPU)
vec3 dominant_planar(vec3 p, vec3 n, float layer, float tile_m) {
    vec3 a = abs(n);
    vec2 uv = a.z > max(a.x, a.y) ? p.xy : (a.x > a.y ? p.yz : p.xz);
    return texture(u_materials, vec3(uv / tile_m, layer)).rgb;
}

#if SCENE_APERIODIC
// integer hash of a lattice cell -> [0, 1] (the same on every GL driver, unlike sin-based hashes)
float cell_hash(ivec2 cell) {
    uint h = uint(cell.x) * 1664525u + uint(cell.y) * 1013904223u;
    h ^= h >> 16; h *= 2246822519u; h ^= h >> 13; h *= 3266489917u; h ^= h >> 16;
    return float(h) * (1.0 / 4294967295.0);
}

float value_noise(vec2 p) {
    vec2 cell = floor(p), f = fract(p);
    f = f * f * (3.0 - 2.0 * f);
    ivec2 c = ivec2(cell) + u_noise_cell;
    return mix(mix(cell_hash(c), cell_hash(c + ivec2(1, 0)), f.x),
               mix(cell_hash(c + ivec2(0, 1)), cell_hash(c + ivec2(1, 1)), f.x), f.y);
}
#endif

// a terrain material at tile coordinates uv (sRGB). With SCENE_APERIODIC a second fetch of the tile, shifted by an
// irrational fraction of it, is mixed in by value noise over ~1.6 tiles, so that no shift by whole tiles maps the
// surface onto itself (a tiled trail offers a pose one tile away as many matches as the true one)
vec3 terrain_material(vec2 uv, float layer) {
    vec3 c = texture(u_materials, vec3(uv, layer), -0.7).rgb;
#if SCENE_APERIODIC
    float shifted = smoothstep(0.45, 0.55, value_noise(0.618 * uv));
    if (shifted > 0.0) {
        c = mix(c, texture(u_materials, vec3(uv + vec2(0.382, 0.618), layer), -0.7).rgb, shifted);
    }
#endif
    return c;
}

// the trail surface at this point; may bend the normal n (ruts, crown edges: shading only)
vec3 trail_albedo(inout vec3 n) {
#if !SCENE_TRAIL_ALIGNED
    vec2 q = mat2(0.8, -0.6, 0.6, 0.8) * v_world.xy;
    // negative LOD bias (terrain_material): sharper ground at grazing angles (anisotropic filtering is too slow on
    // llvmpipe)
    return terrain_material(q / u_tile_m[1], 1.0);
#else
    vec4 tc = texture(u_trail_coords, v_world.xy * u_trail_coords_transform.xy + u_trail_coords_transform.zw);
    vec3 c = terrain_material(vec2(tc.y, tc.x) / u_tile_m[1], 1.0);
    float d = abs(tc.y);
#if SCENE_RUTS  // two wheel ruts 0.62 of the half width out, 0.16 m wide
    float track = 0.62 * u_trail_half_width_m;
    float x = (d - track) / 0.16;
    float rut = exp(-x * x);
    float slope = u_rut_depth_m * 2.0 * x / 0.16 * rut * sign(tc.y);  // d(height)/d(lateral offset)
    n = normalize(n - 6.0 * slope * vec3(tc.zw, 0.0));
    c *= 1.0 - 2.5 * u_rut_depth_m * rut;
#if SCENE_TREAD
    c *= 1.0 - 0.35 * u_tread * rut * step(0.5, fract(tc.x / 0.09 + 1.5 * abs(x)));
#endif
#endif
#if SCENE_EDGE_LINE
    float line = smoothstep(0.07, 0.045, abs(d - (u_trail_half_width_m - 0.2)));
    c = mix(c, vec3(u_edge_line) * (0.8 + 0.4 * c.g), line);
#endif
    return c;
#endif
}

vec3 albedo(inout vec3 n) {
    if (v_material == 0) {   // terrain: ground, ground patches and trail blended by the splat map
        vec4 splat = texture(u_splat, v_world.xy * u_splat_transform.xy + u_splat_transform.zw);
        vec3 c = terrain_material(v_world.xy / u_tile_m[0], 0.0);
        c *= mix(vec3(1.0), u_patch_tint, u_patch_tint_amount * splat.g);
#if SCENE_PATCH
        float patch_weight = u_patch_amount * smoothstep(0.4, 0.7, splat.g);
        if (patch_weight > 0.0) {
            vec2 q = mat2(0.6, 0.8, -0.8, 0.6) * v_world.xy;
            c = mix(c, terrain_material(q / u_tile_m[5], 5.0), patch_weight);
        }
#endif
        if (splat.r > 0.004) {
            c = mix(c, trail_albedo(n), splat.r);
        }
        c *= (1.0 - u_damp * splat.b) * (u_clumps.x + u_clumps.y * splat.a);
        return srgb_to_linear(clamp(c, 0.0, 1.0));
    }
    vec3 c = srgb_to_linear(dominant_planar(v_world, n, float(v_material), u_tile_m[v_material])) * v_tint;
#if SCENE_SNOW  // snow settles on faces that look up
    float cover = u_snow * smoothstep(0.45, 0.8, n.z + 0.25 * (c.g - 0.1));
    if (cover > 0.0) {
        vec3 snow = srgb_to_linear(texture(u_materials, vec3(v_world.xy / u_tile_m[0], 0.0)).rgb);
        c = mix(c, snow, cover);
    }
#endif
    return c;
}

void main() {
    vec3 n = normalize(v_normal);
    vec3 base = albedo(n);
    bool foliage = v_material == 4 || v_material == 7;
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
        float c = dot(-l, u_lamp_dir[k]);
        float cone = smoothstep(u_lamp_cone.x, u_lamp_cone.y, c);
#if SCENE_LAMP_CUTOFF  // low beam: dark above the cut-off
        cone *= smoothstep(u_lamp_cutoff + 0.012, u_lamp_cutoff - 0.012, dot(-l, u_lamp_up));
#endif
#if SCENE_LAMP_RINGS  // concentric rings of the reflector: by the angle off the axis (degrees)
        float off_deg = 57.29578 * sqrt(max(1.0 - c * c, 0.0)) / max(c, 0.1);
        cone *= 1.0 + u_lamp_rings.x * cos(6.2831853 * u_lamp_rings.y * off_deg);
#endif
        irradiance += u_lamp_rgb * cone * max(dot(n, l), foliage ? 0.2 : 0.0) / (d2 + 0.2);
    }
    vec3 radiance = base * irradiance;
    float fog = exp(-u_fog_density * distance(v_world, u_camera_pos));
    radiance = mix(u_fog_rgb, radiance, fog);
    out_color = vec4(radiance, 1.0);
    out_depth = v_depth_m;
}
