// World-space geometry to the camera: clip position, optical-frame z (exact depth), shadow-map coordinates.
uniform mat4 u_clip_from_world;
uniform mat4 u_camera_from_world;
uniform mat4 u_light_from_world;   // shadow map: world -> [-1, 1]^3
uniform float u_shadow_offset_m;   // push the lookup off the surface (normal and sun direction) against acne
uniform vec3 u_sun_dir;

in vec3 in_position;
in vec3 in_normal;
in vec3 in_tint;
in float in_material;

out vec3 v_world;
out vec3 v_normal;
out vec3 v_tint;
flat out int v_material;
out float v_depth_m;
out vec3 v_shadow;

void main() {
    vec4 p = vec4(in_position, 1.0);
    gl_Position = u_clip_from_world * p;
    v_depth_m = (u_camera_from_world * p).z;
    v_world = in_position;
    v_normal = in_normal;
    v_tint = in_tint;
    v_material = int(in_material + 0.5);
    vec3 lookup = in_position + (in_normal + u_sun_dir) * u_shadow_offset_m;
    v_shadow = (u_light_from_world * vec4(lookup, 1.0)).xyz * 0.5 + 0.5;
}
