"""CPU OpenGL stereo renderer (moderngl, EGL on Mesa llvmpipe): colour images and exact left z-depth.

The projection is built from the rig's f, cu, cv so that pixel (u, v) centres sit at integer coordinates (OpenCV
convention) and GL window row 0 is image row 0 (the y flip lives in the projection, so read-backs need no flip).
Depth is the optical-frame z of the surface hit through each pixel centre, written to a float32 target.
One GL context per process (`gl_context()`), shared by every renderer.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from importlib import resources

import moderngl
import numpy as np

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim.config import RenderConfig
from dlvf_ros.sim.lighting import Lighting
from dlvf_ros.sim.meshes import VERTEX_FLOATS
from dlvf_ros.sim.world import World

GLSL_VERSION = "#version 330 core\n"
# headlights in the vehicle frame: position (m), beam pitched down, cone half-angles (deg)
LAMP_POSITIONS_VEHICLE_M = ((0.55, 0.45, 0.65), (0.55, -0.45, 0.65))
LAMP_PITCH_DOWN_DEG = 7.0
LAMP_CONE_DEG = (40.0, 18.0)  # outer, inner
SHADOW_PATH_MARGIN_M = 45.0  # the shadow map covers the trail's bounding box plus this

_CONTEXT: moderngl.Context | None = None


def gl_context() -> moderngl.Context:
    """The process-wide headless GL context (created on first use)."""
    global _CONTEXT
    if _CONTEXT is None:
        try:
            _CONTEXT = moderngl.create_context(standalone=True, backend="egl")
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


def _mat_bytes(M: np.ndarray) -> bytes:
    return np.ascontiguousarray(np.asarray(M, np.float32).T).tobytes()  # GLSL matrices are column-major


def _set(program: moderngl.Program, name: str, value) -> None:
    """Set a uniform if the compiler kept it (unused uniforms are optimised away)."""
    if name not in program:
        return
    if isinstance(value, np.ndarray) and value.ndim == 2:
        program[name].write(_mat_bytes(value))
    else:
        program[name].value = value


class StereoRenderer:
    """Renders stereo frames of one world for one rig; owns its GPU buffers (call `close()` or use `with`)."""

    def __init__(self, world: World, rig: StereoRig | None = None, config: RenderConfig | None = None):
        self.world = world
        self.rig = rig or StereoRig()
        self.config = config or RenderConfig()
        self.ctx = gl_context()
        self._resources: list = []
        self._build_programs()
        self._upload_world()
        size = (self.rig.width, self.rig.height)
        self._color_rb = self._keep(self.ctx.renderbuffer(size, 4))
        self._depth_target_rb = self._keep(self.ctx.renderbuffer(size, 1, dtype="f4"))
        self._zbuffer = self._keep(self.ctx.depth_renderbuffer(size))
        self._fbo = self._keep(self.ctx.framebuffer([self._color_rb, self._depth_target_rb], self._zbuffer))
        self._projection = projection_matrix(self.rig, self.config.near_m, self.config.far_m)
        self._shadow_key: tuple | None = None
        self._shadow_tex = None
        self._shadow_fbo = None

    # -- setup ---------------------------------------------------------------------------------------------------
    def _keep(self, obj):
        self._resources.append(obj)
        return obj

    def _build_programs(self) -> None:
        common = _shader("common.glsl")
        self._scene = self._keep(
            self.ctx.program(
                vertex_shader=GLSL_VERSION + _shader("scene.vert.glsl"),
                fragment_shader=GLSL_VERSION + common + _shader("scene.frag.glsl"),
            )
        )
        self._sky = self._keep(
            self.ctx.program(
                vertex_shader=GLSL_VERSION + _shader("sky.vert.glsl"),
                fragment_shader=GLSL_VERSION + common + _shader("sky.frag.glsl"),
            )
        )
        self._shadow = self._keep(
            self.ctx.program(
                vertex_shader=GLSL_VERSION + _shader("shadow.vert.glsl"),
                fragment_shader=GLSL_VERSION + _shader("shadow.frag.glsl"),
            )
        )

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
        hs, ws = world.splat.shape[:2]
        self._splat = self._keep(self.ctx.texture((ws, hs), 4, np.ascontiguousarray(world.splat).tobytes()))
        self._splat.repeat_x = self._splat.repeat_y = False
        texel = world.config.splat_texel_m
        ox, oy = world.splat_origin_xy_m
        _set(
            self._scene,
            "u_splat_transform",
            (1.0 / (texel * ws), 1.0 / (texel * hs), (0.5 - ox / texel) / ws, (0.5 - oy / texel) / hs),
        )
        _set(self._scene, "u_materials", 0)
        _set(self._scene, "u_splat", 1)
        _set(self._scene, "u_shadow_map", 2)

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
        if self._shadow_tex is None:
            self._shadow_tex = self._keep(self.ctx.depth_texture((size, size)))
            self._shadow_tex.compare_func = "<="
            self._shadow_tex.repeat_x = self._shadow_tex.repeat_y = False
            self._shadow_fbo = self._keep(self.ctx.framebuffer(depth_attachment=self._shadow_tex))
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

    def _set_lighting(self, lighting: Lighting, T_world_vehicle: np.ndarray) -> None:
        sun = np.asarray(lighting.sun_direction_world)
        for prog in (self._scene, self._sky):
            _set(prog, "u_sun_dir", tuple(sun))
            _set(prog, "u_sun_rgb", lighting.sun_rgb)
            _set(prog, "u_exposure", lighting.exposure)
            _set(prog, "u_read_noise", lighting.read_noise)
            _set(prog, "u_shot_noise", lighting.shot_noise)
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
        lamp_dir_vehicle = transforms.rot_y(np.deg2rad(LAMP_PITCH_DOWN_DEG)) @ np.array([1.0, 0.0, 0.0])
        lamp_pos = [transforms.transform_points(T_world_vehicle, np.array([p]))[0] for p in LAMP_POSITIONS_VEHICLE_M]
        lamp_dir = T_world_vehicle[:3, :3] @ lamp_dir_vehicle
        if "u_lamp_pos" in self._scene:
            self._scene["u_lamp_pos"].write(np.asarray(lamp_pos, np.float32).tobytes())
            self._scene["u_lamp_dir"].write(np.asarray([lamp_dir, lamp_dir], np.float32).tobytes())
        _set(self._scene, "u_lamp_rgb", lighting.headlights_rgb)
        _set(self._scene, "u_lamp_cone", tuple(np.cos(np.deg2rad(LAMP_CONE_DEG))))

    def _render_eye(self, T_world_camera: np.ndarray, noise_seed: int, read_depth: bool):
        T_camera_world = transforms.invert(T_world_camera)
        _set(self._scene, "u_clip_from_world", self._projection @ T_camera_world)
        _set(self._scene, "u_camera_from_world", T_camera_world)
        _set(self._scene, "u_camera_pos", tuple(T_world_camera[:3, 3]))
        _set(self._sky, "u_R_world_camera", T_world_camera[:3, :3])
        for prog in (self._scene, self._sky):
            _set(prog, "u_noise_seed", noise_seed)
        self._fbo.use()
        self._fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self._sky_vao.render(moderngl.TRIANGLES, vertices=3)
        # meshes are closed or seen from above; the y flip in the projection turns counter-clockwise into clockwise
        self.ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self.ctx.front_face = "cw"
        for first, count in self._visible_ranges(T_camera_world):
            self._scene_vao.render(moderngl.TRIANGLES, vertices=int(count), first=int(first))
        W, H = self.rig.width, self.rig.height
        image = np.empty((H, W, 3), np.uint8)  # fresh, writable arrays for the caller
        self._fbo.read_into(image, components=3, attachment=0)
        if not read_depth:
            return image, None
        depth = np.empty((H, W), np.float32)
        self._fbo.read_into(depth, components=1, attachment=1, dtype="f4")
        depth[depth <= 0.0] = np.inf  # the sky writes 0: no surface
        return image, depth

    def render(
        self, T_world_vehicle: np.ndarray, lighting: Lighting, noise_seed: int = 0, right_depth: bool = False
    ) -> StereoImages:
        """Render the stereo pair at vehicle pose `T_world_vehicle` (4x4) under `lighting`.

        `noise_seed` selects the sensor-noise pattern (with the world seed and the eye); `right_depth` also reads back
        the right camera's depth (tests)."""
        T_world_vehicle = np.asarray(T_world_vehicle, np.float64)
        if not transforms.is_rigid(T_world_vehicle, tol=1e-5):
            raise ValueError("StereoRenderer.render: T_world_vehicle is not a rigid 4x4 transform")
        if self.config.shadows and lighting.shadow_strength > 0:
            self._prepare_shadows(lighting)
        self._materials.use(0)
        self._splat.use(1)
        if self._shadow_tex is not None:
            self._shadow_tex.use(2)
        self._set_lighting(lighting, T_world_vehicle)
        T_world_left = T_world_vehicle @ self.rig.T_vehicle_camera
        T_world_right = T_world_left @ transforms.make_transform(np.eye(3), [self.rig.baseline, 0.0, 0.0])
        seeds = [0, 0]
        if self.config.sensor_noise:
            seeds = [zlib.crc32(f"{self.world.seed}:{noise_seed}:{eye}".encode()) | 1 for eye in (0, 1)]
        left, depth_left = self._render_eye(T_world_left, seeds[0], True)
        right, depth_right = self._render_eye(T_world_right, seeds[1], right_depth)
        return StereoImages(left, right, depth_left, depth_right)

    def close(self) -> None:
        """Release this renderer's GPU objects (the shared context stays)."""
        for obj in reversed(self._resources):
            obj.release()
        self._resources.clear()

    def __enter__(self) -> StereoRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
