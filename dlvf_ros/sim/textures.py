"""Material textures (sRGB tiles) of a world's style: scikit-image sample photographs, seeded spectral noise,
cellular (Worley) noise and stamped shapes (leaves, needles, pebbles). Nothing is downloaded.

Every tile is seamless (photos by mirroring, noise and stamps by wrapping); the shader breaks the repetition
further with world-space variation. Each ground, trail, rock, tree and man-made member has its own method, scale
and palette; the classic members (meadow, dirt_two_track, rounded, mixed) are the textures from before styles,
drawn from one shared generator in the same order, so classic worlds come out identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import cv2
import numpy as np
from skimage import data as skdata

from dlvf_ros.sim.noise import smoothstep, spectral_noise, to_unit

# layer index of each material in the texture array (the shaders use the same numbers)
GROUND, TRAIL, ROCK, BARK, LEAVES, PATCH, BUILT, SHRUB = range(8)
LAYERS = 8
STAMP_REACH_PX = 24  # largest stamped shape radius at a 512 px tile


class Tile:
    """Seamless size x size fields from one generator (all values in [0, 1] unless said otherwise)."""

    def __init__(self, rng: np.random.Generator, size: int):
        self.rng, self.size, self.shape = rng, size, (size, size)

    def noise(self, beta: float, lo: float = 2.0, hi: float | None = None, stretch=(1.0, 1.0)) -> np.ndarray:
        """Spectral 1/f^beta noise rescaled to [0, 1]; `stretch` (rows, cols) > 1 elongates features along it.
        A band too narrow for a small tile is widened towards shorter wavelengths (at least 2 px)."""
        if hi is not None and hi < 1.5 * lo:
            lo = max(2.0, hi / 1.5)
        return to_unit(spectral_noise(self.rng, self.shape, beta, lo, hi, stretch))

    def photo(self, name: str) -> np.ndarray:
        return _mirror_tile(name, self.size)

    def cells(self, per_side: int, jitter: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cellular noise on a jittered grid of n^2 seeds (n: `per_side` rounded down to a power of two, at least 2):
        distance to the nearest and second-nearest seed (in cell sizes) and a uniform random value per nearest
        cell."""
        n = min(2 ** int(np.log2(max(per_side, 2))), self.size)
        per_cell = self.size // n
        local = (0.5 + jitter * self.rng.uniform(-0.5, 0.5, (n, n, 2))).astype(np.float32)  # seed within its cell
        value = self.rng.uniform(0.0, 1.0, (n, n)).astype(np.float32)
        cell = np.arange(n, dtype=np.float32)
        # pixel centres as (cell row, offset row, cell col, offset col), in cell units
        offset = ((np.arange(per_cell) + 0.5) / per_cell).astype(np.float32)
        py = (np.arange(n)[:, None, None, None] + offset[None, :, None, None]).astype(np.float32)
        px = (np.arange(n)[None, None, :, None] + offset[None, None, None, :]).astype(np.float32)
        shape4 = (n, per_cell, n, per_cell)
        f1 = np.full(shape4, np.inf, np.float32)
        f2 = np.full(shape4, np.inf, np.float32)
        nearest = np.zeros(shape4, np.float32)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                # the neighbour cell's seed, wrapped around the tile, in absolute cell coordinates
                shifted = np.roll(local, (-dy, -dx), axis=(0, 1))
                sy = (cell[:, None] + dy + shifted[..., 0])[:, None, :, None]
                sx = (cell[None, :] + dx + shifted[..., 1])[:, None, :, None]
                d = np.hypot(sy - py, sx - px)
                closer = d < f1
                f2 = np.where(closer, f1, np.minimum(f2, d))
                nearest = np.where(closer, np.roll(value, (-dy, -dx), axis=(0, 1))[:, None, :, None], nearest)
                f1 = np.minimum(f1, d)
        f1, f2, nearest = (a.reshape(self.shape) for a in (f1, f2, nearest))
        return f1, f2, nearest

    def stamps(self, count: int, shape: Callable[[np.random.Generator], Callable]) -> np.ndarray:
        """A float32 (size, size, 4) canvas (RGB + coverage) with `count` shapes at random places: `shape(rng)`
        draws one shape's parameters and returns `paint(canvas, x, y)`; shapes near an edge are painted again
        shifted by the tile size, so they wrap around (shapes must stay within STAMP_REACH_PX * size / 512)."""
        canvas = np.zeros((self.size, self.size, 4), np.float32)
        reach = STAMP_REACH_PX * self.size / 512 + 2
        for _ in range(count):
            x, y = self.rng.uniform(0, self.size, 2)
            paint = shape(self.rng)
            xs = [x] + ([x + self.size] if x < reach else []) + ([x - self.size] if x > self.size - reach else [])
            ys = [y] + ([y + self.size] if y < reach else []) + ([y - self.size] if y > self.size - reach else [])
            for px in xs:
                for py in ys:
                    paint(canvas, px, py)
        return canvas


@lru_cache(maxsize=16)
def _mirror_tile(name: str, size: int) -> np.ndarray:
    """A grey scikit-image photo resized to size/2 and mirrored into a seamless size x size tile in [0, 1]."""
    image = getattr(skdata, name)()
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    image = image[: min(image.shape), : min(image.shape)]
    half = cv2.resize(image.astype(np.float32) / 255.0, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
    top = np.hstack([half, half[:, ::-1]])
    tile = np.vstack([top, top[::-1]])
    tile.setflags(write=False)
    return tile


def _segment(rng: np.random.Generator, length_px: tuple[float, float], size: int, colour: tuple) -> Callable:
    """A straight stroke of random direction and length (px at a 512 px tile), centred where it is painted."""
    angle = rng.uniform(0, np.pi)
    d = rng.uniform(*length_px) * size / 512 * np.array([np.cos(angle), np.sin(angle)])
    fill = (*colour, 1.0)
    return lambda canvas, x, y: cv2.line(
        canvas, (int(x - d[0]), int(y - d[1])), (int(x + d[0]), int(y + d[1])), fill, 1
    )


def _palette(value: np.ndarray, dark: tuple, light: tuple) -> np.ndarray:
    """Map a [0, 1] field to colours between two sRGB endpoints (0..1 floats) -> (H, W, 3)."""
    dark_arr, light_arr = np.asarray(dark, np.float32), np.asarray(light, np.float32)
    return dark_arr + (light_arr - dark_arr) * np.clip(value, 0.0, 1.0)[..., None]


def _ramp(value: np.ndarray, *stops: tuple) -> np.ndarray:
    """Map a [0, 1] field through evenly spaced sRGB colour stops -> (H, W, 3)."""
    positions = np.linspace(0.0, 1.0, len(stops))
    colours = np.asarray(stops, np.float32)
    v = np.clip(value, 0.0, 1.0)
    return np.stack([np.interp(v, positions, colours[:, k]) for k in range(3)], axis=-1).astype(np.float32)


def _over(base: np.ndarray, canvas: np.ndarray) -> np.ndarray:
    """Composite a stamp canvas (RGB + coverage) over a base colour tile."""
    alpha = np.clip(canvas[..., 3:], 0.0, 1.0)
    return base * (1.0 - alpha) + canvas[..., :3] * alpha


def _shade(height: np.ndarray, strength: float) -> np.ndarray:
    """Baked relief shading of a height field (light from the upper left): ~1 +- strength."""
    gy, gx = np.gradient(height)
    return 1.0 + strength * np.clip(-(gx + gy), -1.5, 1.5)


# ----------------------------------------------------------------------------------------------- ground surfaces
def meadow(t: Tile) -> np.ndarray:
    """Classic grass: the grass photo with clumps and brightness variation."""
    grass_photo = t.photo("grass")
    clumps = t.noise(2.0, 4.0, t.size / 4)
    grass = _palette(0.75 * grass_photo + 0.35 * clumps - 0.1, (0.06, 0.11, 0.03), (0.46, 0.58, 0.22))
    grass *= (0.85 + 0.3 * t.noise(1.0, 2.0, 16.0))[..., None]
    return grass


def meadow_flowers(t: Tile) -> np.ndarray:
    base = meadow(t) * 1.05

    def flower(rng):
        colour = [(0.95, 0.92, 0.85), (0.95, 0.85, 0.2), (0.75, 0.45, 0.85), (0.95, 0.55, 0.6)][rng.integers(4)]
        r = max(1, int(round(rng.uniform(1.0, 2.6) * t.size / 512)))
        return lambda canvas, x, y: cv2.circle(canvas, (int(x), int(y)), r, (*colour, 1.0), -1, cv2.LINE_AA)

    return _over(base, t.stamps(int(2.0 * t.size), flower))


def dry_grass(t: Tile) -> np.ndarray:
    """Wind-laid straw: the grass photo streaked along one direction, straw to tan."""
    photo = t.photo("grass")
    streaks = t.noise(1.4, 2.0, t.size / 3, stretch=(0.15, 1.0))
    clumps = t.noise(2.2, 6.0, t.size / 3)
    value = 0.55 * photo + 0.45 * streaks
    straw = _ramp(value, (0.22, 0.17, 0.08), (0.52, 0.42, 0.2), (0.8, 0.7, 0.42), (0.93, 0.86, 0.6))
    return straw * (0.75 + 0.45 * clumps)[..., None]


def dusty_soil(t: Tile) -> np.ndarray:
    grain = t.noise(2.0, 2.0, t.size / 4)
    pebbles = t.photo("gravel")
    return _palette(0.5 * grain + 0.5 * pebbles, (0.3, 0.24, 0.16), (0.7, 0.6, 0.44))


def sand(t: Tile) -> np.ndarray:
    """Wind ripples (warped sine bands), fine grain and scattered dark grains; pale beige."""
    y, x = np.mgrid[0 : t.size, 0 : t.size].astype(np.float32) / t.size
    warp = t.noise(2.5, 8.0, t.size / 2) - 0.5
    ripples = 0.5 + 0.5 * np.sin(2 * np.pi * (9 * y + 2 * x + 1.2 * warp))
    grain = t.noise(0.6, 2.0, 8.0)
    value = 0.45 + 0.3 * ripples + 0.35 * (grain - 0.5)
    colour = _ramp(value, (0.5, 0.42, 0.3), (0.78, 0.69, 0.52), (0.93, 0.87, 0.72))
    specks = smoothstep(0.8, 0.9, t.noise(0.2, 2.0, 4.0))
    return colour * (1.0 - 0.45 * specks)[..., None] * _shade(ripples * 2.0, 0.6)[..., None]


def damp_sand(t: Tile) -> np.ndarray:
    colour = sand(t) * np.array([0.72, 0.7, 0.68], np.float32)

    def twig(rng):
        return _segment(rng, (6, 22), t.size, (0.2, 0.15, 0.1))

    return _over(colour, t.stamps(int(0.5 * t.size), twig))


def _leaf_litter(t: Tile, leaf_colours: list[tuple], leaves: int, needles: int) -> np.ndarray:
    humus = _ramp(t.noise(1.8, 2.0, t.size / 3), (0.07, 0.05, 0.03), (0.2, 0.14, 0.08), (0.3, 0.22, 0.13))
    scale = t.size / 512

    def leaf(rng):
        colour = tuple(np.array(leaf_colours[rng.integers(len(leaf_colours))]) * rng.uniform(0.7, 1.15))
        axes = (max(1, int(rng.uniform(5, 11) * scale)), max(1, int(rng.uniform(2.5, 5) * scale)))
        angle = rng.uniform(0, 360)
        tip = np.array([np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))]) * axes[0]

        def paint(canvas, x, y):
            shadow = (0.03, 0.02, 0.01, 0.8)
            cv2.ellipse(canvas, (int(x) + 1, int(y) + 1), axes, angle, 0, 360, shadow, -1, cv2.LINE_AA)
            cv2.ellipse(canvas, (int(x), int(y)), axes, angle, 0, 360, (*colour, 1.0), -1, cv2.LINE_AA)
            rib = (*(0.6 * c for c in colour), 1.0)
            cv2.line(canvas, (int(x - tip[0]), int(y - tip[1])), (int(x + tip[0]), int(y + tip[1])), rib)

        return paint

    def needle(rng):
        colour = (0.45, 0.3, 0.16) if rng.random() < 0.7 else (0.3, 0.22, 0.12)
        return _segment(rng, (5, 12), t.size, colour)

    litter = _over(humus, t.stamps(needles, needle))
    return _over(litter, t.stamps(leaves, leaf))


def forest_litter(t: Tile) -> np.ndarray:
    """Fallen leaves (stamped ellipses with a midrib and a shadow) and needles over dark humus."""
    colours = [(0.55, 0.3, 0.1), (0.7, 0.45, 0.12), (0.45, 0.22, 0.08), (0.62, 0.52, 0.2), (0.35, 0.2, 0.1)]
    return _leaf_litter(t, colours, int(3.2 * t.size), int(2.0 * t.size))


def litter_moss(t: Tile) -> np.ndarray:
    f1, _, value = t.cells(max(4, t.size // 40))
    cushion = smoothstep(0.9, 0.2, f1) * (0.6 + 0.4 * value)
    return _ramp(
        0.5 * cushion + 0.5 * t.noise(1.0, 2.0, 16.0), (0.06, 0.1, 0.03), (0.22, 0.32, 0.08), (0.4, 0.48, 0.14)
    )


def snow(t: Tile) -> np.ndarray:
    """Wind crust (soft cellular bumps baked as relief), sastrugi streaks, grain, sparkle and a few dirt specks."""
    f1, f2, _ = t.cells(max(4, t.size // 20))
    crust = smoothstep(0.0, 0.6, f2 - f1)
    streaks = t.noise(1.6, 3.0, t.size / 2, stretch=(0.2, 1.0))
    grain = t.noise(0.5, 2.0, 6.0)
    height = 0.35 * crust + 0.45 * streaks + 0.2 * grain
    colour = _ramp(height, (0.72, 0.78, 0.86), (0.88, 0.91, 0.95), (0.98, 0.98, 0.99))
    colour *= _shade(height * 3.0, 0.5)[..., None]
    sparkle = smoothstep(0.9, 0.96, t.noise(0.0, 2.0, 3.0))
    specks = smoothstep(0.86, 0.92, t.noise(0.3, 2.0, 5.0))
    colour = colour + 0.12 * sparkle[..., None]
    return colour * (1.0 - 0.45 * specks)[..., None]


def snow_straw(t: Tile) -> np.ndarray:
    """Trampled grey snow with dry grass blades poking out."""
    base = snow(t) * np.array([0.85, 0.84, 0.82], np.float32)

    def blade(rng):
        length = rng.uniform(5, 14) * t.size / 512
        lean = rng.uniform(-0.5, 0.5)
        colour = (0.55, 0.45, 0.25, 1.0) if rng.random() < 0.6 else (0.35, 0.3, 0.16, 1.0)
        return lambda canvas, x, y: cv2.line(
            canvas, (int(x), int(y)), (int(x + lean * length), int(y - length)), colour, 1
        )

    return _over(base, t.stamps(int(1.5 * t.size), blade))


def moss(t: Tile) -> np.ndarray:
    """Moss cushions (cellular bumps, lit from one side) with fine fibrous noise; yellow-green to dark green."""
    f1, f2, value = t.cells(max(4, t.size // 24))
    cushion = smoothstep(1.0, 0.0, f1) * (0.7 + 0.3 * value)
    fibre = t.noise(0.8, 2.0, 6.0)
    colour = _ramp(0.55 * cushion + 0.45 * fibre, (0.05, 0.09, 0.02), (0.2, 0.32, 0.06), (0.5, 0.58, 0.16))
    colour *= _shade(cushion * 4.0, 0.5)[..., None]
    gaps = smoothstep(0.08, 0.0, f2 - f1)
    return colour * (1.0 - 0.6 * gaps)[..., None]


def lichen(t: Tile) -> np.ndarray:
    patches = smoothstep(0.45, 0.6, t.noise(2.2, 4.0, t.size / 4))
    base = moss(t) * 0.8
    grey = _ramp(t.noise(1.0, 2.0, 12.0), (0.45, 0.48, 0.4), (0.75, 0.78, 0.66))
    return base * (1 - patches[..., None]) + grey * patches[..., None]


def bare_soil(t: Tile) -> np.ndarray:
    """Cracked dry soil: cellular plates with dark cracks, clods and pebbles from the gravel photo."""
    f1, f2, value = t.cells(max(4, t.size // 32), jitter=1.0)
    cracks = smoothstep(0.1, 0.02, f2 - f1)
    plates = 0.45 + 0.3 * value + 0.25 * t.noise(1.5, 2.0, t.size / 8)
    pebbles = t.photo("gravel")
    colour = _ramp(0.6 * plates + 0.4 * pebbles, (0.22, 0.15, 0.1), (0.45, 0.33, 0.22), (0.66, 0.53, 0.38))
    colour *= _shade(plates * 2.0, 0.4)[..., None]
    return colour * (1.0 - 0.75 * cracks)[..., None]


def weeds(t: Tile) -> np.ndarray:
    base = bare_soil(t)

    def weed(rng):
        leaves = int(rng.integers(3, 7))
        angles = rng.uniform(0, 2 * np.pi, leaves)
        radii = rng.uniform(2, 6, leaves) * t.size / 512

        def paint(canvas, x, y):
            for angle, r in zip(angles, radii):
                tip = (int(x + r * np.cos(angle)), int(y + r * np.sin(angle)))
                cv2.line(canvas, (int(x), int(y)), tip, (0.25, 0.4, 0.1, 1.0), 1, cv2.LINE_AA)

        return paint

    return _over(base, t.stamps(int(0.8 * t.size), weed))


# ------------------------------------------------------------------------------------------------ trail surfaces
def dirt(t: Tile) -> np.ndarray:
    """Classic dirt: the gravel photo with noise, dark to light brown."""
    pebbles = t.photo("gravel")
    return _palette(0.8 * pebbles + 0.3 * t.noise(2.2, 3.0, t.size / 2) - 0.05, (0.20, 0.14, 0.09), (0.72, 0.62, 0.48))


def gravel(t: Tile) -> np.ndarray:
    """Loose gravel: cellular pebbles, each its own grey/tan/rust tone, rounded by baked shading, dust between."""
    f1, f2, value = t.cells(max(6, t.size // 9), jitter=0.95)
    pebble = smoothstep(0.02, 0.18, f2 - f1)
    dome = np.sqrt(np.clip(1.0 - f1 / 0.7, 0.0, 1.0))
    tones = _ramp(value, (0.38, 0.37, 0.36), (0.62, 0.58, 0.52), (0.52, 0.4, 0.3), (0.75, 0.74, 0.72), (0.3, 0.3, 0.32))
    speckle = 0.85 + 0.3 * t.noise(0.5, 2.0, 4.0)
    stones = tones * (speckle * (0.55 + 0.45 * dome))[..., None] * _shade(dome * 3.0, 0.35)[..., None]
    dust = _palette(t.noise(1.5, 2.0, 32.0), (0.25, 0.22, 0.18), (0.45, 0.4, 0.33))
    return dust * (1 - pebble[..., None]) + stones * pebble[..., None]


def asphalt(t: Tile) -> np.ndarray:
    """Asphalt: dark binder with bright aggregate speckles, tar-sealed cracks and repair patches."""
    aggregate = smoothstep(0.62, 0.8, t.noise(0.3, 2.0, 5.0))
    fine = t.noise(0.8, 2.0, 10.0)
    f1, f2, _ = t.cells(max(3, t.size // 160), jitter=1.0)
    cracks = smoothstep(0.03, 0.005, f2 - f1) * smoothstep(0.4, 0.6, t.noise(2.0, 8.0, t.size / 4))
    patches = smoothstep(0.62, 0.66, t.noise(2.6, 12.0, t.size / 2))
    value = 0.22 + 0.18 * fine + 0.45 * aggregate
    colour = _palette(value, (0.1, 0.1, 0.11), (0.62, 0.61, 0.6))
    colour *= (1.0 - 0.35 * patches)[..., None]
    return colour * (1.0 - 0.7 * cracks)[..., None]


def sand_track(t: Tile) -> np.ndarray:
    """Loose sand churned into tyre ridges along the track (the tile's v axis runs along the trail)."""
    ridges = t.noise(1.8, 3.0, t.size / 3, stretch=(0.12, 1.0))
    grain = t.noise(0.6, 2.0, 8.0)
    value = 0.5 * ridges + 0.5 * grain
    colour = _ramp(value, (0.48, 0.4, 0.28), (0.72, 0.62, 0.45), (0.86, 0.78, 0.6))
    return colour * _shade(ridges * 3.0, 0.5)[..., None]


def mud(t: Tile) -> np.ndarray:
    """Wet mud: dark, smooth puddles, churned lumps and straw bits."""
    lumps = t.noise(2.0, 3.0, t.size / 6)
    puddles = smoothstep(0.58, 0.64, t.noise(2.4, 12.0, t.size / 2))
    colour = _ramp(0.6 * lumps + 0.4 * t.noise(1.0, 2.0, 8.0), (0.08, 0.06, 0.04), (0.22, 0.16, 0.1), (0.38, 0.3, 0.2))
    colour *= _shade(lumps * 3.0, 0.6)[..., None]
    water = _palette(t.noise(2.0, 8.0, t.size / 4), (0.1, 0.1, 0.1), (0.28, 0.3, 0.32))
    colour = colour * (1 - puddles[..., None]) + water * puddles[..., None]

    def straw(rng):
        return _segment(rng, (3, 9), t.size, (0.5, 0.42, 0.22))

    return _over(colour, t.stamps(int(0.3 * t.size), straw))


def planks(t: Tile) -> np.ndarray:
    """Boardwalk: boards across the trail (grain along u, 8 boards per tile along v), dark gaps and nail heads."""
    boards = 8
    y = (np.arange(t.size) + 0.5) / t.size * boards
    board = np.floor(y).astype(int)
    within = (y - board)[:, None] * np.ones((1, t.size), np.float32)
    grain = t.noise(1.4, 2.0, t.size / 2, stretch=(1.0, 0.05))
    tone = t.rng.uniform(0.75, 1.2, boards)[board][:, None]
    colour = _ramp(grain, (0.25, 0.18, 0.12), (0.45, 0.35, 0.24), (0.6, 0.5, 0.36)) * tone[..., None]
    gaps = smoothstep(0.04, 0.0, within) + smoothstep(0.96, 1.0, within)
    edge = _shade(np.minimum(within, 1 - within) * 4.0, 0.8)
    colour = np.ascontiguousarray(colour * (1.0 - 0.85 * np.clip(gaps, 0, 1))[..., None] * edge[..., None])
    for k in range(boards):  # two nails at each end of every board
        v = int((k + 0.5) / boards * t.size)
        for u in (0.06, 0.12, 0.88, 0.94):
            cv2.circle(colour, (int(u * t.size), v), max(1, t.size // 200), (0.15, 0.14, 0.13), -1, cv2.LINE_AA)
    return colour


def worn_grass(t: Tile) -> np.ndarray:
    """A path trampled into grass: flattened, yellowed blades with bare spots."""
    grass = meadow(t)
    flattened = grass * np.array([1.25, 1.15, 0.7], np.float32)
    bare = smoothstep(0.55, 0.7, t.noise(2.0, 4.0, t.size / 4))
    soil = dusty_soil(t)
    return flattened * (1 - bare[..., None]) + soil * bare[..., None]


# ---------------------------------------------------------------------------------------------------------- rocks
def granite(t: Tile) -> np.ndarray:
    """Classic rock: grain and the gravel photo, dark cracks and pale lichen."""
    gravel_photo = t.photo("gravel")
    grain = t.noise(2.4, 2.0, t.size / 2)
    cracks = smoothstep(0.78, 0.92, 1.0 - np.abs(spectral_noise(t.rng, t.shape, 2.0, 6.0, t.size / 3)) / 3.0)
    rock = _palette(0.45 * grain + 0.45 * gravel_photo[::-1] + 0.1, (0.16, 0.15, 0.14), (0.70, 0.68, 0.64))
    rock *= (1.0 - 0.55 * cracks)[..., None]
    lichen_mask = smoothstep(0.72, 0.8, t.noise(2.6, 3.0, t.size / 4))
    return rock * (1 - lichen_mask[..., None]) + lichen_mask[..., None] * np.array([0.62, 0.64, 0.42], np.float32)


def basalt(t: Tile) -> np.ndarray:
    """Angular blocks: dark basalt with vesicles (the moon photo's craters), facet tones and rusty stains."""
    craters = t.photo("moon")
    f1, f2, value = t.cells(max(3, t.size // 96), jitter=1.0)
    facets = 0.6 + 0.4 * value
    value_field = 0.5 * craters + 0.3 * t.noise(1.2, 2.0, 16.0) + 0.2 * facets
    colour = _ramp(value_field, (0.08, 0.08, 0.08), (0.28, 0.26, 0.25), (0.5, 0.48, 0.45))
    edges = smoothstep(0.06, 0.0, f2 - f1)
    rust = smoothstep(0.68, 0.78, t.noise(2.2, 6.0, t.size / 3))
    colour = colour * (1 - rust[..., None]) + rust[..., None] * np.array([0.45, 0.27, 0.14], np.float32)
    return colour * (1.0 + 0.5 * edges)[..., None]


def shale(t: Tile) -> np.ndarray:
    """Flat slabs: pale layered limestone (bedding bands along u) with fine grain and orange lichen spots."""
    bands = t.noise(1.8, 2.0, t.size / 2, stretch=(1.0, 0.04))
    grain = t.noise(0.8, 2.0, 8.0)
    colour = _ramp(0.65 * bands + 0.35 * grain, (0.35, 0.34, 0.31), (0.62, 0.6, 0.55), (0.8, 0.78, 0.72))
    spots = smoothstep(0.8, 0.86, t.noise(1.6, 3.0, 24.0))
    return colour * (1 - spots[..., None]) + spots[..., None] * np.array([0.85, 0.55, 0.15], np.float32)


# ---------------------------------------------------------------------------------------------- bark and foliage
def classic_bark(t: Tile) -> np.ndarray:
    fibres = t.noise(1.6, 2.0, t.size / 2, stretch=(0.08, 1.0))
    return _palette(0.8 * fibres + 0.2 * t.noise(2.0), (0.09, 0.06, 0.04), (0.45, 0.36, 0.27))


def classic_leaves(t: Tile) -> np.ndarray:
    leaf_mask = smoothstep(0.35, 0.65, t.noise(1.2, 2.0, 24.0))
    leaves = _palette(0.6 * t.noise(1.8, 2.0, 64.0) + 0.4 * leaf_mask, (0.02, 0.05, 0.015), (0.35, 0.52, 0.16))
    return leaves * (0.35 + 0.65 * leaf_mask)[..., None]


def scaly_bark(t: Tile) -> np.ndarray:
    """Spruce: small grey-brown scales (cells elongated along the trunk)."""
    f1, f2, value = t.cells(max(4, t.size // 20))
    scales = smoothstep(0.0, 0.25, f2 - f1) * (0.6 + 0.4 * value)
    fibres = t.noise(1.4, 2.0, t.size / 2, stretch=(0.1, 1.0))
    return _ramp(0.6 * scales + 0.4 * fibres, (0.05, 0.04, 0.035), (0.24, 0.2, 0.17), (0.42, 0.38, 0.33))


def plated_bark(t: Tile) -> np.ndarray:
    """Pine: orange-brown plates separated by deep dark fissures."""
    f1, f2, value = t.cells(max(3, t.size // 48), jitter=1.0)
    fissure = smoothstep(0.12, 0.02, f2 - f1)
    plate = _ramp(0.5 * value + 0.5 * t.noise(1.2, 2.0, 16.0), (0.35, 0.18, 0.08), (0.6, 0.35, 0.18), (0.75, 0.5, 0.3))
    return plate * (1.0 - 0.85 * fissure)[..., None]


def smooth_bark(t: Tile) -> np.ndarray:
    """Broadleaf (beech-like): smooth light grey bark with dark horizontal marks and green algae."""
    base = _ramp(t.noise(2.2, 4.0, t.size / 2), (0.35, 0.35, 0.33), (0.55, 0.55, 0.52), (0.7, 0.7, 0.66))
    marks = smoothstep(0.75, 0.85, t.noise(1.5, 2.0, t.size / 4, stretch=(1.0, 0.1)))
    algae = smoothstep(0.6, 0.75, t.noise(2.4, 6.0, t.size / 3))
    colour = base * (1 - 0.6 * marks[..., None])
    return colour * (1 - 0.5 * algae[..., None]) + algae[..., None] * np.array([0.2, 0.3, 0.12], np.float32)


def _needles(t: Tile, dark: tuple, light: tuple, count: int, length: tuple[float, float]) -> np.ndarray:
    base = _palette(t.noise(2.0, 4.0, t.size / 4), (0.01, 0.02, 0.01), dark)

    def needle(rng):
        colour = tuple(np.asarray(dark) + (np.asarray(light) - np.asarray(dark)) * rng.uniform(0.0, 1.0))
        return _segment(rng, length, t.size, colour)

    return _over(base, t.stamps(count, needle))


def spruce_needles(t: Tile) -> np.ndarray:
    return _needles(t, (0.04, 0.1, 0.07), (0.15, 0.3, 0.2), int(6 * t.size), (2.0, 5.0))


def pine_needles(t: Tile) -> np.ndarray:
    return _needles(t, (0.08, 0.13, 0.04), (0.32, 0.42, 0.14), int(4 * t.size), (4.0, 9.0))


def broad_leaves(t: Tile) -> np.ndarray:
    """Broadleaf foliage: overlapping leaves with dark gaps, sunlit to shaded greens."""
    base = _palette(t.noise(2.0, 4.0, t.size / 4), (0.01, 0.02, 0.005), (0.05, 0.09, 0.02))
    scale = t.size / 512

    def leaf(rng):
        colour = np.array([0.2, 0.42, 0.08]) * rng.uniform(0.5, 1.5) + np.array([0.05, 0.03, 0.0]) * rng.random()
        axes = (max(1, int(rng.uniform(5, 9) * scale)), max(1, int(rng.uniform(3, 5) * scale)))
        angle, fill = rng.uniform(0, 360), (*colour, 1.0)
        return lambda canvas, x, y: cv2.ellipse(canvas, (int(x), int(y)), axes, angle, 0, 360, fill, -1, cv2.LINE_AA)

    return _over(base, t.stamps(int(3 * t.size), leaf))


# ---------------------------------------------------------------------------------------------------- undergrowth
def _blades(t: Tile, dark: tuple, light: tuple) -> np.ndarray:
    """Grass-tuft blades: streaks along v (the tile's vertical on upright faces)."""
    streaks = t.noise(1.0, 2.0, t.size / 4, stretch=(0.04, 1.0))
    return _palette(0.8 * streaks + 0.2 * t.noise(1.5), dark, light)


# ------------------------------------------------------------------------------------------------------ man-made
def weathered_wood(t: Tile) -> np.ndarray:
    """Posts and fences: silver-grey weathered wood, grain along v, knots and checks."""
    grain = t.noise(1.3, 2.0, t.size / 2, stretch=(0.05, 1.0))
    knots = smoothstep(0.85, 0.9, t.noise(2.6, 12.0, t.size / 6))
    colour = _ramp(grain, (0.22, 0.2, 0.17), (0.45, 0.42, 0.37), (0.62, 0.6, 0.55))
    return colour * (1.0 - 0.6 * knots)[..., None]


def brown_wood(t: Tile) -> np.ndarray:
    return weathered_wood(t) * np.array([1.05, 0.8, 0.55], np.float32)


def painted_metal(t: Tile) -> np.ndarray:
    """Barrels: painted steel (the vertex tint gives the paint colour) with ribs, scratches and rust."""
    v = (np.arange(t.size) + 0.5) / t.size
    ribs = (0.85 + 0.15 * np.cos(2 * np.pi * 3 * v))[:, None] * np.ones((1, t.size), np.float32)
    rust = smoothstep(0.6, 0.72, t.noise(2.0, 3.0, t.size / 3))
    paint = np.full(t.shape + (3,), 0.8, np.float32) * (ribs * (0.9 + 0.1 * t.noise(0.8, 2.0, 8.0)))[..., None]
    return paint * (1 - rust[..., None]) + rust[..., None] * np.array([0.38, 0.18, 0.08], np.float32)


def brick(t: Tile) -> np.ndarray:
    """A building wall: the brick photo recoloured, per-brick tone and grime streaks running down."""
    photo = t.photo("brick")
    grime = t.noise(1.6, 2.0, t.size / 2, stretch=(0.06, 1.0))
    colour = _ramp(0.75 * photo + 0.25 * t.noise(1.0, 2.0, 8.0), (0.2, 0.1, 0.07), (0.5, 0.25, 0.16), (0.78, 0.7, 0.6))
    return colour * (0.75 + 0.35 * grime)[..., None]


@dataclass(frozen=True)
class GroundSurface:
    """Ground member: main and patch tiles (patches where the splat's G channel is high), their sizes (m), how the
    terrain shader mixes them, and the colours of the grass tufts that grow on it."""

    main: Callable[[Tile], np.ndarray]
    patch: Callable[[Tile], np.ndarray]
    tile_m: float
    patch_tile_m: float
    patch_amount: float  # 0: the patch tile is not used (classic: a dry-grass tint instead)
    patch_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # colour multiplier where the splat's G is high
    patch_tint_amount: float = 0.0
    damp: float = 0.35  # darkening where the splat's B (damp patches) is high
    clumps: tuple[float, float] = (0.7, 0.6)  # brightness = clumps[0] + clumps[1] * splat A
    tufts: tuple[tuple, tuple] = ((0.08, 0.14, 0.03), (0.45, 0.55, 0.2))  # dark, light sRGB of the blades
    snow_cover: float = 0.0  # snow on the upward faces of every object


GROUND_SURFACES: dict[str, GroundSurface] = {
    "meadow": GroundSurface(meadow, meadow_flowers, 1.7, 2.3, 0.0, (1.4, 1.15, 0.65), 0.7),
    "dry_grass": GroundSurface(
        dry_grass, dusty_soil, 2.1, 2.7, 0.8, damp=0.2, clumps=(0.8, 0.4), tufts=((0.3, 0.24, 0.1), (0.85, 0.75, 0.45))
    ),
    "sand": GroundSurface(
        sand, damp_sand, 2.6, 3.1, 0.7, damp=0.15, clumps=(0.85, 0.3), tufts=((0.3, 0.35, 0.15), (0.7, 0.7, 0.45))
    ),
    "forest_litter": GroundSurface(
        forest_litter,
        litter_moss,
        1.3,
        2.2,
        0.75,
        damp=0.3,
        clumps=(0.7, 0.6),
        tufts=((0.05, 0.1, 0.03), (0.3, 0.45, 0.12)),
    ),
    "snow": GroundSurface(
        snow,
        snow_straw,
        3.0,
        2.4,
        0.6,
        damp=0.1,
        clumps=(0.9, 0.2),
        tufts=((0.3, 0.25, 0.12), (0.7, 0.6, 0.35)),
        snow_cover=1.0,
    ),
    "moss": GroundSurface(
        moss, lichen, 1.2, 1.9, 0.65, damp=0.3, clumps=(0.75, 0.5), tufts=((0.06, 0.12, 0.03), (0.4, 0.5, 0.15))
    ),
    "bare_soil": GroundSurface(
        bare_soil, weeds, 1.9, 2.5, 0.7, damp=0.35, clumps=(0.75, 0.5), tufts=((0.15, 0.2, 0.06), (0.5, 0.55, 0.25))
    ),
}


@dataclass(frozen=True)
class TrailSurface:
    """Trail member: its tile and size (m), whether the tile follows the trail (u across, v along) or the world;
    the shape of its coverage (``two_track``: two wheel tracks with a grassy strip of `strip_m` between; ``full``;
    ``worn``: two faint tracks, trampled in patches); the width range as a factor of WorldConfig.trail_width_m; the
    edge's blend inside and outside the half width and its wobble (m); patches of trail material in the ground
    nearby; the crown height range (m, geometry), rut depth (m, shading only), tyre-tread marks in the ruts and
    painted edge lines (brightness, 0: none)."""

    texture: Callable[[Tile], np.ndarray]
    tile_m: float
    aligned: bool
    coverage: str
    width_scale: tuple[float, float]
    edge_m: tuple[float, float] = (0.3, 0.25)
    wobble_m: float = 0.12
    strip_m: tuple[float, float] = (0.18, 0.42)
    bare_patches: float = 0.0
    crown_m: tuple[float, float] = (0.0, 0.0)
    rut_depth_m: float = 0.0
    tread: float = 0.0
    edge_line: float = 0.0


TRAIL_SURFACES: dict[str, TrailSurface] = {
    "dirt_two_track": TrailSurface(dirt, 1.3, False, "two_track", (0.9, 1.15), bare_patches=0.8, rut_depth_m=0.04),
    "gravel": TrailSurface(
        gravel,
        0.9,
        True,
        "full",
        (1.0, 1.35),
        (0.15, 0.15),
        0.1,
        bare_patches=0.25,
        crown_m=(0.03, 0.08),
        rut_depth_m=0.02,
    ),
    "paved": TrailSurface(
        asphalt, 2.2, True, "full", (1.1, 1.4), (0.04, 0.04), 0.015, crown_m=(0.03, 0.07), edge_line=0.85
    ),
    "sand": TrailSurface(
        sand_track,
        1.6,
        True,
        "full",
        (0.85, 1.2),
        (0.45, 0.45),
        0.2,
        bare_patches=0.5,
        crown_m=(0.0, 0.03),
        rut_depth_m=0.05,
    ),
    "mud": TrailSurface(
        mud, 1.4, True, "two_track", (0.95, 1.2), (0.3, 0.3), 0.15, (0.15, 0.35), 0.6, (0.0, 0.04), 0.09, tread=0.6
    ),
    "planks": TrailSurface(planks, 1.6, True, "full", (0.6, 0.8), (0.02, 0.02), 0.0),
    "worn_grass": TrailSurface(worn_grass, 1.7, True, "worn", (0.45, 0.7), (0.35, 0.35), 0.15, (0.1, 0.3), 0.3),
}

ROCK_TEXTURES = {"rounded": granite, "angular": basalt, "slabs": shale}
TREE_TEXTURES = {  # bark, foliage
    "conifer": (scaly_bark, spruce_needles),
    "pine": (plated_bark, pine_needles),
    "broadleaf": (smooth_bark, broad_leaves),
    "mixed": (classic_bark, classic_leaves),
}
BUILT_TEXTURES = {
    "none": weathered_wood,
    "posts": weathered_wood,
    "fence": brown_wood,
    "barrels": painted_metal,
    "wall": brick,
}


def material_textures(rngs: list[np.random.Generator], size: int, style) -> np.ndarray:
    """(LAYERS, size, size, 4) uint8 RGBA tiles (sRGB, alpha 255) of a style's members, layer k from `rngs[k]`.

    Classic worlds pass one generator for the first five layers (the order of before styles)."""
    ground = GROUND_SURFACES[style.ground]
    bark, foliage = TREE_TEXTURES[style.trees]
    makers = [
        ground.main,
        TRAIL_SURFACES[style.trail].texture,
        ROCK_TEXTURES[style.rocks],
        bark,
        foliage,
        ground.patch,
        BUILT_TEXTURES[style.man_made],
        lambda t: _blades(t, *ground.tufts),
    ]
    layers = np.stack([make(Tile(rng, size)) for make, rng in zip(makers, rngs)])
    rgba = np.empty((LAYERS, size, size, 4), np.uint8)
    rgba[..., :3] = np.clip(layers * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgba[..., 3] = 255
    return rgba
