"""CPU OpenGL stereo renderer (moderngl, EGL on Mesa llvmpipe): colour images and exact left z-depth.

The projection is built from the rig's f, cu, cv so that pixel (u, v) centres sit at integer coordinates (OpenCV
convention) and GL window row 0 is image row 0 (the y flip lives in the projection, so read-backs need no flip).
Each eye is two passes: the scene (then the sky where nothing was drawn) writes linear radiance and the
optical-frame z of the surface hit through each pixel centre to float32 targets; the camera pass of the world's
camera member (camera.py) turns radiance into the image. Motion blur, defocus and glare touch the colour only:
depth is exactly the scene pass's. One GL context per process (`gl_context()`), shared by every renderer.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import cv2
import moderngl
import numpy as np

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim.camera import CAMERAS, TONE_CURVES, meter
from dlvf_ros.sim.config import RenderConfig
from dlvf_ros.sim.lighting import HEADLIGHTS, SKIES, Lighting
from dlvf_ros.sim.meshes import VERTEX_FLOATS
from dlvf_ros.sim.textures import GROUND_SURFACES, LAYERS, TRAIL_SURFACES
from dlvf_ros.sim.world import TRAIL_COORDS_TEXEL_M, World

GLSL_VERSION = "#version 330 core\n"
NOISE_STREAM = 0x7E3A  # seeds the texture noise lattice with the world seed, apart from the world's other draws
LAMP_POSITIONS_VEHICLE_M = ((0.55, 0.45, 0.65), (0.55, -0.45, 0.65))  # headlights in the vehicle frame (m)
SHADOW_PATH_MARGIN_M = 45.0  # the shadow map covers the trail's bounding box plus this
OBJECT_TILE_M = {2: 1.1, 3: 0.9, 4: 0.8, 6: 1.2, 7: 0.5}  # material layer -> tile size (m) on objects
METERING_CELLS = 24  # auto-exposure reads a grid of about this many cells across the short side
NEAREST_GROUND_M = 1.3  # the ground at the bottom of the image (camera 1 m up, pitched down 19 deg)
MOTION_BLUR_PX_PER_TAP = 3.0  # radiance samples along the motion during the exposure: one per 3 px, 2 to 4
GLARE_COS_OFF_AXIS = np.cos(np.deg2rad(75.0))  # the sun's halo and flare are drawn when it is this close to the view
SUN_BEHIND_OBJECTS_GLARE = 0.3  # a sun hidden behind trees or a crest still veils the image (bright sky around it)
VEIL_UNIFORM = 0.03  # uniform veiling glare: this fraction of the sun's irradiance times the camera's `veil`
SUN_AZIMUTH_STEP_DEG = 5.0  # a sun that follows the direction of travel moves in steps (the shadow map is redrawn)

_CONTEXT: moderngl.Context | None = None


def gl_context() -> moderngl.Context:
    """The process-wide headless GL context (created on first use)."""
    global _CONTEXT
    if _CONTEXT is None:
        try:
            # the stubs type `backend` as a settings dict; moderngl takes the backend's name
            _CONTEXT = moderngl.create_context(standalone=True, backend="egl")  # type: ignore[arg-type]
        except Exception as exc:  # moderngl raises plain Exception when no EGL device exists
            raise RuntimeError(
                f"could not create a headless OpenGL context ({exc}); the simulator needs EGL with Mesa llvmpipe "
                "(libegl1 and libgl1-mesa-dri)"
            ) from exc
    return _CONTEXT


def _shader(name: str) -> str:
    return resources.files("dlvf_ros.sim").joinpath("shaders", name).read_text()


def projection_matrix(rig: StereoRig, near_m: float, far_m: float) -> np.ndarray:
    """4x4 optical frame (x right, y down, z forward) -> GL clip coordinates for the rig's pinhole.

    Window x = u + 0.5 and window y = v + 0.5, so pixel centres (integers) land on GL fragment centres.
    """
    W, H = rig.width, rig.height
    P = np.zeros((4, 4))
    P[0, 0] = 2.0 * rig.f / W
    P[0, 2] = 2.0 * (rig.cu + 0.5) / W - 1.0
    P[1, 1] = 2.0 * rig.f / H
    P[1, 2] = 2.0 * (rig.cv + 0.5) / H - 1.0
    P[2, 2] = (far_m + near_m) / (far_m - near_m)
    P[2, 3] = -2.0 * far_m * near_m / (far_m - near_m)
    P[3, 2] = 1.0
    return P


@dataclass
class StereoImages:
    left: np.ndarray  # (H, W, 3) uint8 RGB
    right: np.ndarray
    depth_left_m: np.ndarray  # (H, W) float32 optical z; inf where sky
    depth_right_m: np.ndarray | None = None
    exposure: float = 0.0  # radiance multiplier the camera chose (both eyes)
    exposure_time_s: float = 0.0  # its exposure time (0: the classic camera, which has none)
    gain: float = 1.0


def _mat_bytes(M: np.ndarray) -> bytes:
    return np.ascontiguousarray(np.asarray(M, np.float32).T).tobytes()  # GLSL matrices are column-major


def _uniform(program: moderngl.Program, name: str) -> moderngl.Uniform:
    """The uniform `name` of `program`; TypeError for a member of another kind (attribute, block)."""
    member = program[name]
    if not isinstance(member, moderngl.Uniform):
        raise TypeError(f"shader member {name!r} is a {type(member).__name__}, not a uniform")
    return member


def _set(program: moderngl.Program, name: str, value) -> None:
    """Set a uniform if the compiler kept it (unused uniforms are optimised away)."""
    if name not in program:
        return
    if isinstance(value, np.ndarray) and value.ndim == 2:
        _uniform(program, name).write(_mat_bytes(value))
    else:
        _uniform(program, name).value = value


class StereoRenderer:
    """Renders stereo frames of one world for one rig; owns its GPU buffers (call `close()` or use `with`)."""

    def __init__(self, world: World, rig: StereoRig | None = None, config: RenderConfig | None = None):
        self.world = world
        self.rig = rig or StereoRig()
        self.config = config or RenderConfig()
        self.camera = CAMERAS[world.style.camera]
        self.sky = SKIES[world.style.sky]
        self.headlights = HEADLIGHTS[world.style.headlights]
        self.ctx = gl_context()
        self._resources: list = []
        self._build_programs()
        self._upload_world()
        size = (self.rig.width, self.rig.height)
        # linear radiance: float32 for the classic camera (its images stay those of before styles), else half
        radiance_dtype = "f4" if world.style.camera == "classic" else "f2"
        self._radiance = self._keep(self.ctx.texture(size, 4, dtype=radiance_dtype))
        self._radiance.repeat_x = self._radiance.repeat_y = False
        self._depth_target = self._keep(self.ctx.texture(size, 1, dtype="f4"))
        self._depth_target.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._zbuffer = self._keep(self.ctx.depth_renderbuffer(size))
        self._fbo = self._keep(self.ctx.framebuffer([self._radiance, self._depth_target], self._zbuffer))
        self._image_rb = self._keep(self.ctx.renderbuffer(size, 4))
        self._image_fbo = self._keep(self.ctx.framebuffer([self._image_rb]))
        self._metering_level = max(0, int(np.log2(min(size) / METERING_CELLS)))
        self._projection = projection_matrix(self.rig, self.config.near_m, self.config.far_m)
        self._shadow_key: tuple | None = None
        self._shadow_tex: moderngl.Texture | None = None
        self._shadow_fbo: moderngl.Framebuffer | None = None
        self._weather: dict[Lighting, Lighting] = {}

    # -- setup ---------------------------------------------------------------------------------------------------
    def _keep(self, obj):
        self._resources.append(obj)
        return obj

    def _program(self, vertex: str, fragment: str, defines: Mapping[str, int] | None = None) -> moderngl.Program:
        header = GLSL_VERSION + "".join(f"#define {name} {int(value)}\n" for name, value in (defines or {}).items())
        return self._keep(
            self.ctx.program(vertex_shader=GLSL_VERSION + _shader(vertex), fragment_shader=header + _shader(fragment))
        )

    def _build_programs(self) -> None:
        """The scene shader of the world's ground, trail and headlight members (shader variants by #define)."""
        style, trail = self.world.style, self.world.trail
        surface = TRAIL_SURFACES[style.trail]
        scene = {
            "SCENE_PATCH": GROUND_SURFACES[style.ground].patch_amount > 0,
            "SCENE_TRAIL_ALIGNED": surface.aligned,
            "SCENE_RUTS": surface.aligned and trail.rut_depth_m > 0,
            "SCENE_TREAD": surface.tread > 0,
            "SCENE_EDGE_LINE": surface.edge_line > 0,
            "SCENE_SNOW": GROUND_SURFACES[style.ground].snow_cover > 0,
            "SCENE_LAMP_CUTOFF": self.headlights.cutoff_deg is not None,
            "SCENE_LAMP_RINGS": self.headlights.rings[0] > 0,
            "SCENE_APERIODIC": self.world.config.aperiodic_textures,
        }
        self._scene = self._program("scene.vert.glsl", "scene.frag.glsl", scene)
        self._sky = self._program("fullscreen.vert.glsl", "sky.frag.glsl")
        self._shadow = self._program("shadow.vert.glsl", "shadow.frag.glsl")
        self._cameras: dict[tuple[bool, bool], tuple[moderngl.Program, moderngl.VertexArray]] = {}

    def _camera_program(self, blur: bool, glare: bool) -> tuple[moderngl.Program, moderngl.VertexArray]:
        """The camera pass of the world's camera member, with or without motion blur and sun glare."""
        if (blur, glare) not in self._cameras:
            cam = self.camera
            defines = {
                "CAMERA_BLUR": blur,
                "CAMERA_DEFOCUS": cam.defocus_px > 0,
                "CAMERA_GLARE": glare,
                "CAMERA_VIGNETTE": cam.vignetting > 0,
                "CAMERA_NOISE_AFTER_TONE": cam.noise_after_tone,
                "CAMERA_GAMMA2": cam.gamma == 2.0,
                "CAMERA_SATURATION": cam.saturation != 1.0,
                "CAMERA_BLACK_LEVEL": cam.black_level > 0,
                "CAMERA_TONE": TONE_CURVES.index(cam.tone),
            }
            program = self._program("fullscreen.vert.glsl", "camera.frag.glsl", defines)
            _set(program, "u_radiance", 0)
            _set(program, "u_depth", 1)
            self._cameras[(blur, glare)] = (program, self._keep(self.ctx.vertex_array(program, [])))
        return self._cameras[(blur, glare)]

    def _upload_world(self) -> None:
        world = self.world
        vertex_parts, index_parts, ranges = [], [], []
        base = first = 0
        for chunk in world.chunks:
            for mesh in chunk.lod_meshes:
                vertex_parts.append(mesh.vertex_data())
                index_parts.append(mesh.faces.reshape(-1) + base)
                ranges.append((first, mesh.faces.size))
                base += len(mesh.positions)
                first += mesh.faces.size
        self._ranges = np.array(ranges).reshape(len(world.chunks), -1, 2)  # (chunk, level of detail, first/count)
        lo = np.array([c.bounds_min for c in world.chunks])
        hi = np.array([c.bounds_max for c in world.chunks])
        self._bounds = (lo, hi, np.array([c.max_distance_m for c in world.chunks]))
        corner_bits = np.array([[(k >> a) & 1 for a in range(3)] for k in range(8)], float)
        self._corners = lo[:, None, :] + corner_bits[None] * (hi - lo)[:, None, :]  # (C, 8, 3)
        vbo = self._keep(self.ctx.buffer(np.concatenate(vertex_parts).tobytes()))
        ibo = self._keep(self.ctx.buffer(np.concatenate(index_parts).astype(np.uint32).tobytes()))
        stride_pad = f"{4 * (VERTEX_FLOATS - 3)}x"
        self._scene_vao = self._keep(
            self.ctx.vertex_array(
                self._scene,
                [(vbo, "3f 3f 3f 1f", "in_position", "in_normal", "in_tint", "in_material")],
                index_buffer=ibo,
                index_element_size=4,
            )
        )
        self._shadow_vao = self._keep(
            self.ctx.vertex_array(
                self._shadow, [(vbo, f"3f {stride_pad}", "in_position")], index_buffer=ibo, index_element_size=4
            )
        )
        self._sky_vao = self._keep(self.ctx.vertex_array(self._sky, []))

        layers, size = world.textures.shape[0], world.textures.shape[1]
        self._materials = self._keep(self.ctx.texture_array((size, size, layers), 4, world.textures.tobytes()))
        self._materials.build_mipmaps()
        self._materials.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        self._splat = self._world_map(world.splat, world.config.splat_texel_m, world.splat_origin_xy_m, "u_splat")
        self._trail_coords = self._world_map(
            world.trail_coords, TRAIL_COORDS_TEXEL_M, world.trail_coords_origin_xy_m, "u_trail_coords"
        )
        _set(self._scene, "u_materials", 0)
        _set(self._scene, "u_splat", 1)
        _set(self._scene, "u_shadow_map", 2)
        _set(self._scene, "u_trail_coords", 3)
        self._set_style()

    def _world_map(self, data: np.ndarray, texel_m: float, origin_xy_m: np.ndarray, name: str):
        """A texture over the world's xy plane (texel centres on the grid from `origin_xy_m`) and its uniform
        `{name}_transform` (uv = xy * scale + offset)."""
        hs, ws, channels = data.shape
        dtype = "f4" if data.dtype == np.float32 else "f1"
        texture = self._keep(self.ctx.texture((ws, hs), channels, np.ascontiguousarray(data).tobytes(), dtype=dtype))
        texture.repeat_x = texture.repeat_y = False
        ox, oy = origin_xy_m
        transform = (1.0 / (texel_m * ws), 1.0 / (texel_m * hs), (0.5 - ox / texel_m) / ws, (0.5 - oy / texel_m) / hs)
        _set(self._scene, f"{name}_transform", transform)
        return texture

    def _set_style(self) -> None:
        """Uniforms of the world's ground and trail members and its trail geometry."""
        style, trail = self.world.style, self.world.trail
        ground, surface = GROUND_SURFACES[style.ground], TRAIL_SURFACES[style.trail]
        tiles = [ground.tile_m, surface.tile_m, *(OBJECT_TILE_M.get(k, 1.0) for k in range(2, LAYERS))]
        tiles[5] = ground.patch_tile_m
        if "u_tile_m" in self._scene:
            _uniform(self._scene, "u_tile_m").write(np.asarray(tiles, np.float32).tobytes())
        _set(self._scene, "u_patch_tint", ground.patch_tint)
        _set(self._scene, "u_patch_tint_amount", ground.patch_tint_amount)
        _set(self._scene, "u_patch_amount", ground.patch_amount)
        _set(self._scene, "u_damp", ground.damp)
        _set(self._scene, "u_clumps", ground.clumps)
        _set(self._scene, "u_snow", ground.snow_cover)
        _set(self._scene, "u_trail_half_width_m", trail.half_width_m)
        _set(self._scene, "u_rut_depth_m", trail.rut_depth_m)
        _set(self._scene, "u_tread", surface.tread)
        _set(self._scene, "u_edge_line", surface.edge_line)
        if self.world.config.aperiodic_textures:  # the noise lattice differs from world to world
            cell = np.random.default_rng([self.world.seed, NOISE_STREAM]).integers(-(2**20), 2**20, 2)
            _set(self._scene, "u_noise_cell", tuple(int(c) for c in cell))
        lights = self.headlights
        _set(self._scene, "u_lamp_cone", tuple(np.cos(np.deg2rad(lights.cone_deg))))
        _set(self._scene, "u_lamp_rings", lights.rings)
        _set(self._scene, "u_lamp_cutoff", float(np.sin(np.deg2rad(lights.cutoff_deg or 0.0))))

    # -- shadows -------------------------------------------------------------------------------------------------
    def _light_matrix(self, sun_dir: np.ndarray) -> tuple[np.ndarray, float]:
        """Orthographic world -> [-1, 1]^3 map seen from the sun, and its texel size (m)."""
        e3 = sun_dir / np.linalg.norm(sun_dir)
        helper = np.array([0.0, 0.0, 1.0]) if abs(e3[2]) < 0.99 else np.array([1.0, 0.0, 0.0])
        e1 = np.cross(helper, e3)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(e3, e1)
        path_lo = self.world.path_xy_m.min(0) - SHADOW_PATH_MARGIN_M
        path_hi = self.world.path_xy_m.max(0) + SHADOW_PATH_MARGIN_M
        corners = self._corners.reshape(-1, 3)
        z_lo, z_hi = corners[:, 2].min(), corners[:, 2].max()
        box = np.array(
            [[x, y, z] for x in (path_lo[0], path_hi[0]) for y in (path_lo[1], path_hi[1]) for z in (z_lo, z_hi)]
        )
        B = np.stack([e1, e2, e3])
        coords_box = box @ B.T
        coords_all = corners @ B.T
        lo = coords_box.min(0)
        hi = coords_box.max(0)
        lo[2], hi[2] = coords_all[:, 2].min() - 1.0, coords_all[:, 2].max() + 1.0  # every caster, towards the sun
        M = np.eye(4)
        M[0, :3] = 2.0 * e1 / (hi[0] - lo[0])
        M[0, 3] = -2.0 * lo[0] / (hi[0] - lo[0]) - 1.0
        M[1, :3] = 2.0 * e2 / (hi[1] - lo[1])
        M[1, 3] = -2.0 * lo[1] / (hi[1] - lo[1]) - 1.0
        M[2, :3] = -2.0 * e3 / (hi[2] - lo[2])  # nearer the sun = smaller depth
        M[2, 3] = 2.0 * lo[2] / (hi[2] - lo[2]) + 1.0
        texel_m = max(hi[0] - lo[0], hi[1] - lo[1]) / self.config.shadow_map_size
        return M, texel_m

    def _prepare_shadows(self, lighting: Lighting) -> None:
        key = lighting.sun_direction_world
        if self._shadow_key == key:
            return
        size = self.config.shadow_map_size
        if self._shadow_tex is None or self._shadow_fbo is None:
            texture = self._keep(self.ctx.depth_texture((size, size)))
            texture.compare_func = "<="
            texture.repeat_x = texture.repeat_y = False
            self._shadow_tex = texture
            self._shadow_fbo = self._keep(self.ctx.framebuffer(depth_attachment=texture))
        M, texel_m = self._light_matrix(np.array(key))
        self._shadow_fbo.use()
        self._shadow_fbo.clear(depth=1.0)
        self.ctx.disable(moderngl.CULL_FACE)
        self.ctx.enable(moderngl.DEPTH_TEST)
        _set(self._shadow, "u_light_from_world", M)
        for first, count in self._ranges[:, 0]:  # full-detail casters
            self._shadow_vao.render(moderngl.TRIANGLES, vertices=int(count), first=int(first))
        _set(self._scene, "u_light_from_world", M)
        _set(self._scene, "u_shadow_offset_m", 1.5 * texel_m)
        self._shadow_key = key

    # -- frames --------------------------------------------------------------------------------------------------
    def _visible_ranges(self, T_camera_world: np.ndarray) -> list[tuple[int, int]]:
        """Index ranges of the chunks that may be seen (frustum and detail distance), nearest first (early z)."""
        p = self._corners @ T_camera_world[:3, :3].T + T_camera_world[:3, 3]
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        rig = self.rig
        u_lo, u_hi = (-0.5 - rig.cu) / rig.f, (rig.width - 0.5 - rig.cu) / rig.f
        v_lo, v_hi = (-0.5 - rig.cv) / rig.f, (rig.height - 0.5 - rig.cv) / rig.f
        lo, hi, max_distance = self._bounds
        camera_world = transforms.invert(T_camera_world)[:3, 3]
        distance = np.linalg.norm(np.maximum(np.maximum(lo - camera_world, camera_world - hi), 0.0), axis=1)
        outside = (
            np.all(z < self.config.near_m, axis=1)
            | np.all(z > self.config.far_m, axis=1)
            | np.all(x < u_lo * z, axis=1)
            | np.all(x > u_hi * z, axis=1)
            | np.all(y < v_lo * z, axis=1)
            | np.all(y > v_hi * z, axis=1)
            | (distance > max_distance)
        )
        lod = np.searchsorted(np.asarray(self.world.config.lod_distances_m), distance)
        return [tuple(self._ranges[k, lod[k]]) for k in np.argsort(distance, kind="stable") if not outside[k]]

    def effective_lighting(self, lighting: Lighting, T_world_vehicle: np.ndarray) -> Lighting:
        """`lighting` under the world's sky member, with a sun that follows the direction of travel resolved from
        the trail heading nearest the vehicle (in SUN_AZIMUTH_STEP_DEG steps)."""
        if lighting not in self._weather:
            self._weather[lighting] = lighting.with_sky(self.sky)
        weathered = self._weather[lighting]
        if weathered.sun_azimuth_relative_deg is None:
            return weathered
        heading_deg = np.rad2deg(self.world.heading_near(T_world_vehicle[:2, 3]))
        return weathered.facing(np.deg2rad(SUN_AZIMUTH_STEP_DEG * round(heading_deg / SUN_AZIMUTH_STEP_DEG)))

    def _set_lighting(self, lighting: Lighting, T_world_vehicle: np.ndarray) -> None:
        sun = np.asarray(lighting.sun_direction_world)
        for prog in (self._scene, self._sky):
            _set(prog, "u_sun_dir", tuple(sun))
            _set(prog, "u_sun_rgb", lighting.sun_rgb)
        _set(self._sky, "u_zenith_rgb", lighting.sky_zenith_rgb)
        _set(self._sky, "u_horizon_rgb", lighting.sky_horizon_rgb)
        _set(self._sky, "u_cloud_cover", lighting.cloud_cover)
        _set(self._sky, "u_cloud_seed", float(zlib.crc32(f"{self.world.seed}:{lighting.hour}".encode()) % 1000))
        _set(self._sky, "u_intrinsics", (self.rig.f, self.rig.cu, self.rig.cv))
        _set(self._scene, "u_shadow_strength", lighting.shadow_strength if self.config.shadows else 0.0)
        _set(self._scene, "u_ambient_sky_rgb", lighting.ambient_sky_rgb)
        _set(self._scene, "u_ambient_ground_rgb", lighting.ambient_ground_rgb)
        _set(self._scene, "u_fog_rgb", lighting.sky_horizon_rgb)
        _set(self._scene, "u_fog_density", lighting.fog_density_per_m if self.config.fog else 0.0)
        pitch = np.deg2rad(self.headlights.pitch_down_deg)
        lamp_dir_vehicle = transforms.rot_y(pitch) @ np.array([1.0, 0.0, 0.0])
        lamp_pos = [transforms.transform_points(T_world_vehicle, np.array([p]))[0] for p in LAMP_POSITIONS_VEHICLE_M]
        lamp_dir = T_world_vehicle[:3, :3] @ lamp_dir_vehicle
        _set(self._scene, "u_lamp_up", tuple(T_world_vehicle[:3, :3] @ transforms.rot_y(pitch) @ np.array([0, 0, 1.0])))
        if "u_lamp_pos" in self._scene:
            _uniform(self._scene, "u_lamp_pos").write(np.asarray(lamp_pos, np.float32).tobytes())
            _uniform(self._scene, "u_lamp_dir").write(np.asarray([lamp_dir, lamp_dir], np.float32).tobytes())
        _set(self._scene, "u_lamp_rgb", self.headlights.rgb if lighting.headlights_on else (0.0, 0.0, 0.0))

    def _render_scene(self, T_world_camera: np.ndarray) -> None:
        """Scene and sky pass: linear radiance and optical z into the float targets."""
        T_camera_world = transforms.invert(T_world_camera)
        _set(self._scene, "u_clip_from_world", self._projection @ T_camera_world)
        _set(self._scene, "u_camera_from_world", T_camera_world)
        _set(self._scene, "u_camera_pos", tuple(T_world_camera[:3, 3]))
        _set(self._sky, "u_R_world_camera", T_world_camera[:3, :3])
        self._materials.use(0)  # the camera pass binds its own textures to units 0 and 1
        self._splat.use(1)
        if self._shadow_tex is not None:
            self._shadow_tex.use(2)
        self._trail_coords.use(3)
        self._fbo.use()
        self._fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        # meshes are closed or seen from above; the y flip in the projection turns counter-clockwise into clockwise
        self.ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self.ctx.front_face = "cw"
        self.ctx.depth_func = "<"
        for first, count in self._visible_ranges(T_camera_world):
            self._scene_vao.render(moderngl.TRIANGLES, vertices=int(count), first=int(first))
        # the sky where nothing was drawn (at the far plane, without writing depth)
        self.ctx.disable(moderngl.CULL_FACE)
        self.ctx.depth_func = "<="
        self._fbo.depth_mask = False
        self._sky_vao.render(moderngl.TRIANGLES, vertices=3)
        self._fbo.depth_mask = True
        self.ctx.depth_func = "<"

    def _read_depth(self) -> np.ndarray:
        W, H = self.rig.width, self.rig.height
        depth = np.frombuffer(self._depth_target.read(), np.float32).reshape(H, W).copy()
        depth[depth <= 0.0] = np.inf  # the sky writes 0: no surface
        return depth

    def _metered_luminance(self) -> float:
        """Mean linear luminance of the radiance target over a coarse grid (its mipmap level)."""
        self._radiance.build_mipmaps(0, self._metering_level)
        level = self._metering_level
        w, h = max(1, self.rig.width >> level), max(1, self.rig.height >> level)
        dtype = np.float32 if self._radiance.dtype == "f4" else np.float16
        grid = np.frombuffer(self._radiance.read(level=level), dtype).reshape(h, w, 4)[..., :3].astype(np.float32)
        return meter(grid @ np.array([0.2126, 0.7152, 0.0722], np.float32), self.camera.metering)

    def _sun_in_camera(self, lighting: Lighting, T_world_camera: np.ndarray, depth: np.ndarray) -> tuple:
        """(unit sun direction in the optical frame, its visibility from the sky pixels around its image, at least
        SUN_BEHIND_OBJECTS_GLARE)."""
        sun = T_world_camera[:3, :3].T @ np.asarray(lighting.sun_direction_world)
        if sun[2] <= 0.0:
            return sun, 1.0
        u = self.rig.f * sun[0] / sun[2] + self.rig.cu
        v = self.rig.f * sun[1] / sun[2] + self.rig.cv
        r = max(2, int(round(0.008 * self.rig.f)))  # about the sun's own size
        ui, vi = int(round(u)), int(round(v))
        if not (0 <= ui < self.rig.width and 0 <= vi < self.rig.height):
            return sun, 1.0
        window = depth[max(vi - r, 0) : vi + r + 1, max(ui - r, 0) : ui + r + 1]
        return sun, max(float(np.isinf(window).mean()), SUN_BEHIND_OBJECTS_GLARE)

    def _camera_pass(
        self,
        exposure: float,
        gain: float,
        noise_seed: int,
        lighting: Lighting,
        sun: tuple,
        blur: tuple[int, np.ndarray],
    ) -> np.ndarray:
        """The camera member: radiance target -> (H, W, 3) uint8 RGB."""
        cam = self.camera
        sun_camera, visibility = sun
        sun_rgb = visibility * np.asarray(lighting.sun_rgb)
        glare = cam.veil > 0 and max(sun_rgb) > 0.0 and sun_camera[2] > GLARE_COS_OFF_AXIS
        prog, vao = self._camera_program(blur[0] > 0, glare)
        W, H = self.rig.width, self.rig.height
        _set(prog, "u_intrinsics", (self.rig.f, self.rig.cu, self.rig.cv))
        _set(prog, "u_size", (float(W), float(H)))
        _set(prog, "u_exposure", exposure)
        _set(prog, "u_white_balance", cam.white_balance_rgb)
        _set(prog, "u_gamma", cam.gamma)
        _set(prog, "u_contrast", cam.contrast)
        _set(prog, "u_black_level", cam.black_level)
        _set(prog, "u_saturation", cam.saturation)
        noise = (lighting.read_noise, lighting.shot_noise) if cam.noise_after_tone else (cam.read_noise, cam.shot_noise)
        _set(prog, "u_read_noise", noise[0])
        _set(prog, "u_shot_noise", noise[1])
        _set(prog, "u_gain", gain)
        _set(prog, "u_noise_seed", noise_seed)
        _set(prog, "u_vignetting", cam.vignetting)
        _set(prog, "u_blur_taps", blur[0])
        _set(prog, "u_start_from_now", blur[1])
        _set(prog, "u_defocus_px", cam.defocus_px * W / 512.0)
        _set(prog, "u_focus_m", cam.focus_m)
        _set(prog, "u_sun_camera", tuple(sun_camera))
        _set(prog, "u_sun_rgb", tuple(sun_rgb))
        _set(prog, "u_veil_rgb", tuple(VEIL_UNIFORM * cam.veil * sun_rgb))
        _set(prog, "u_veil", cam.veil)
        _set(prog, "u_flare", cam.flare)
        self._radiance.use(0)
        self._depth_target.use(1)
        self._image_fbo.use()
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        vao.render(moderngl.TRIANGLES, vertices=3)
        image = np.empty((H, W, 3), np.uint8)  # fresh, writable arrays for the caller
        self._image_fbo.read_into(image, components=3)
        if cam.jpeg_quality:
            ok, jpeg = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, cam.jpeg_quality])
            decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if ok else None
            if decoded is None:
                raise RuntimeError(f"renderer: JPEG round trip failed (jpeg_quality {cam.jpeg_quality})")
            image = np.ascontiguousarray(decoded[..., ::-1])
        return image

    def _blur(self, motion, time_s: float, T_vehicle_eye: np.ndarray) -> tuple[int, np.ndarray]:
        """(radiance samples along the motion, T_start_now) for an exposure of `time_s` (no blur: 0 samples)."""
        if motion is None or time_s <= 0.0:
            return 0, np.eye(4)
        # the vehicle's pose at the start of the exposure, to first order in its motion
        linear, angular = (np.asarray(m, float) for m in motion)
        T_now_start = transforms.make_transform(transforms.so3_exp(-angular * time_s), -linear * time_s)
        T_start_now = transforms.invert(T_vehicle_eye) @ transforms.invert(T_now_start) @ T_vehicle_eye
        # the largest flow: rotation, and translation seen at the image corners on the ground just ahead
        rotation = transforms.rotation_angle(T_start_now[:3, :3]) * self.rig.f
        corner_px = max(self.rig.f, 0.5 * np.hypot(self.rig.width, self.rig.height))
        flow_px = rotation + np.linalg.norm(T_start_now[:3, 3]) * corner_px / NEAREST_GROUND_M
        taps = int(min(max(np.ceil(flow_px / MOTION_BLUR_PX_PER_TAP), 2), 4)) if flow_px > 1.0 else 0
        return taps, T_start_now

    def render(
        self,
        T_world_vehicle: np.ndarray,
        lighting: Lighting,
        noise_seed: int = 0,
        right_depth: bool = False,
        motion_vehicle: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> StereoImages:
        """Render the stereo pair at vehicle pose `T_world_vehicle` (4x4) under `lighting` (and the world's sky).

        `noise_seed` selects the sensor-noise pattern (with the world seed and the eye); `right_depth` also reads back
        the right camera's depth (tests); `motion_vehicle` (linear m/s, angular rad/s in the vehicle frame) blurs the
        colour images over the exposure time of cameras that have one."""
        T_world_vehicle = np.asarray(T_world_vehicle, np.float64)
        if not transforms.is_rigid(T_world_vehicle, tol=1e-5):
            raise ValueError("StereoRenderer.render: T_world_vehicle is not a rigid 4x4 transform")
        lighting = self.effective_lighting(lighting, T_world_vehicle)
        if self.config.shadows and lighting.shadow_strength > 0:
            self._prepare_shadows(lighting)
        self._set_lighting(lighting, T_world_vehicle)
        T_vehicle_left = self.rig.T_vehicle_camera
        T_vehicle_right = T_vehicle_left @ transforms.make_transform(np.eye(3), [self.rig.baseline, 0.0, 0.0])
        seeds = [0, 0]
        if self.config.sensor_noise:
            seeds = [zlib.crc32(f"{self.world.seed}:{noise_seed}:{eye}".encode()) | 1 for eye in (0, 1)]

        T_world_left = T_world_vehicle @ T_vehicle_left
        self._render_scene(T_world_left)
        depth_left = self._read_depth()
        metered = None if self.camera.metering == "lighting" else self._metered_luminance()
        exposure = self.camera.exposure(lighting, metered)
        time_s, gain = self.camera.time_and_gain(exposure)
        sun = self._sun_in_camera(lighting, T_world_left, depth_left)
        left = self._camera_pass(
            exposure, gain, seeds[0], lighting, sun, self._blur(motion_vehicle, time_s, T_vehicle_left)
        )

        T_world_right = T_world_vehicle @ T_vehicle_right
        self._render_scene(T_world_right)
        depth_right = self._read_depth() if right_depth else None
        sun_right = (T_world_right[:3, :3].T @ np.asarray(lighting.sun_direction_world), sun[1])
        blur_right = self._blur(motion_vehicle, time_s, T_vehicle_right)
        right = self._camera_pass(exposure, gain, seeds[1], lighting, sun_right, blur_right)
        return StereoImages(left, right, depth_left, depth_right, exposure, time_s, gain)

    def close(self) -> None:
        """Release this renderer's GPU objects (the shared context stays)."""
        for obj in reversed(self._resources):
            obj.release()
        self._resources.clear()

    def __enter__(self) -> StereoRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
