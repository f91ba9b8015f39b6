"""Photometric augmentation of training images: what lighting, weather and cameras do to a picture of one place.

Each image of a pair gets its own draw, so the network sees the two views of a place under different cameras and
light: exposure and gamma, contrast and saturation, white balance, darkness with a headlight-like pool of light,
veiling glare with haze and a flare, vignetting, defocus or motion blur, shot and read noise. Geometry is never
touched (disparity, poses and pixel positions stay exact), so every supervision signal stays valid.

Images are float RGB tensors [B, 3, H, W] in [0, 1]; every draw comes from the `torch.Generator` passed in, so a
training step is reproducible from its seed. Not in the reference method, which trains without augmentation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    """Probabilities (p_*) and ranges of each photometric change; `enabled: false` turns all of them off."""

    enabled: bool = False
    exposure_log2_std: float = 0.5  # gain 2**N(0, std) before the tone curve
    gamma_range: list[float] = field(default_factory=lambda: [0.6, 1.7])  # log-uniform
    contrast_range: list[float] = field(default_factory=lambda: [0.6, 1.4])
    saturation_range: list[float] = field(default_factory=lambda: [0.4, 1.3])
    white_balance_std: float = 0.08  # per-channel log gain
    p_night: float = 0.25  # darken to a headlight-lit scene, then auto-expose with gain noise
    night_ambient_range: list[float] = field(
        default_factory=lambda: [0.01, 0.15]
    )  # light left outside the headlight pool
    p_glare: float = 0.2  # veiling glare and haze towards a low sun, with a flare blob
    glare_strength_range: list[float] = field(default_factory=lambda: [0.15, 0.6])
    p_vignette: float = 0.4
    vignette_range: list[float] = field(default_factory=lambda: [0.1, 0.6])  # darkening at the image corners
    p_blur: float = 0.3  # half defocus (Gaussian), half motion (a line kernel)
    blur_sigma_range: list[float] = field(default_factory=lambda: [0.4, 1.5])  # px at the training resolution
    motion_blur_px_range: list[float] = field(default_factory=lambda: [2.0, 7.0])
    read_noise_range: list[float] = field(default_factory=lambda: [0.0, 0.03])
    shot_noise_range: list[float] = field(default_factory=lambda: [0.0, 0.04])

    def __post_init__(self) -> None:
        for name in ("p_night", "p_glare", "p_vignette", "p_blur"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be a probability in [0, 1], got {getattr(self, name)}")
        for name in (
            "gamma_range",
            "contrast_range",
            "saturation_range",
            "night_ambient_range",
            "glare_strength_range",
            "vignette_range",
            "blur_sigma_range",
            "motion_blur_px_range",
            "read_noise_range",
            "shot_noise_range",
        ):
            bounds = getattr(self, name)
            if len(bounds) != 2 or not 0.0 <= bounds[0] <= bounds[1]:
                raise ValueError(f"AugmentConfig.{name} must be [low, high] with 0 <= low <= high, got {bounds}")
        if self.gamma_range[0] <= 0:
            raise ValueError(f"AugmentConfig.gamma_range must be positive, got {self.gamma_range}")
        if self.exposure_log2_std < 0 or self.white_balance_std < 0:
            raise ValueError("AugmentConfig: exposure_log2_std and white_balance_std must be >= 0")


def _uniform(
    generator: torch.Generator, n: int, bounds: Sequence[float], device: torch.device | None = None
) -> torch.Tensor:
    low, high = bounds
    return (low + (high - low) * torch.rand(n, generator=generator)).to(device)


def _chance(generator: torch.Generator, n: int, p: float, device: torch.device | None = None) -> torch.Tensor:
    return (torch.rand(n, generator=generator) < p).to(device)


def _pixel_grid(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised coordinates (x in [-1, 1] across, y in [-1, 1] down), each [1, 1, H, W]."""
    y = torch.linspace(-1.0, 1.0, height, device=device).view(1, 1, height, 1).expand(1, 1, height, width)
    x = torch.linspace(-1.0, 1.0, width, device=device).view(1, 1, 1, width).expand(1, 1, height, width)
    return x, y


def _blur(images: torch.Tensor, generator: torch.Generator, config: AugmentConfig) -> torch.Tensor:
    """Defocus (isotropic Gaussian) or motion blur (a line of random direction) of one image [1, 3, H, W]."""
    if bool(torch.rand(1, generator=generator) < 0.5):
        sigma = float(_uniform(generator, 1, config.blur_sigma_range))
        radius = max(1, math.ceil(3 * sigma))
        taps = torch.arange(-radius, radius + 1, dtype=images.dtype)
        kernel_1d = torch.exp(-0.5 * (taps / sigma) ** 2)
        kernel = torch.outer(kernel_1d, kernel_1d)
    else:
        length = float(_uniform(generator, 1, config.motion_blur_px_range))
        angle = float(torch.rand(1, generator=generator)) * math.pi
        radius = math.ceil(length / 2)
        taps = torch.arange(-radius, radius + 1, dtype=images.dtype)
        y, x = torch.meshgrid(taps, taps, indexing="ij")
        along = x * math.cos(angle) + y * math.sin(angle)
        across = -x * math.sin(angle) + y * math.cos(angle)
        kernel = torch.clamp(1.0 - across.abs(), min=0.0) * (along.abs() <= length / 2).to(images.dtype)
    kernel = (kernel / kernel.sum()).expand(3, 1, *kernel.shape).to(images.device)
    padding = kernel.shape[-1] // 2
    padded = F.pad(images, (padding, padding, padding, padding), mode="replicate")
    return F.conv2d(padded, kernel, groups=3)


def augment_images(images: torch.Tensor, generator: torch.Generator, config: AugmentConfig) -> torch.Tensor:
    """A photometric variant of each image [B, 3, H, W] (float RGB in [0, 1]); the input is not modified.

    The draws come from `generator` (a CPU generator: a handful of numbers per image, and the seed of the noise); the
    pixels are computed on the images' device, so on a GPU the augmentation does not hold up training on the CPU."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"augment_images: expected [B, 3, H, W] RGB, got {tuple(images.shape)}")
    if not config.enabled:
        return images
    batch, _, height, width = images.shape
    device, dtype = images.device, images.dtype
    out = images.detach().to(torch.float32).clamp(0.0, 1.0) ** 2.2  # to (approximately) linear light
    x, y = _pixel_grid(height, width, device)
    view = (batch, 1, 1, 1)

    # light: exposure, white balance
    exposure = torch.exp2(torch.randn(batch, generator=generator) * config.exposure_log2_std).view(view).to(device)
    white_balance = (
        torch.exp(torch.randn(batch, 3, generator=generator) * config.white_balance_std).view(batch, 3, 1, 1).to(device)
    )
    out = out * exposure * white_balance

    # night: the scene darkened to an ambient level, plus a pool of headlight light on the ground ahead
    night = _chance(generator, batch, config.p_night, device).view(view).to(out.dtype)
    ambient = _uniform(generator, batch, config.night_ambient_range, device).view(view)
    centre_x = _uniform(generator, batch, (-0.2, 0.2), device).view(view)
    pool = torch.exp(-(((x - centre_x) / 0.7) ** 2) - ((y - 1.0) / 0.9) ** 2)  # bright at the bottom centre
    lit = ambient + (1.0 - ambient) * pool
    darkened = out * lit
    gain = 0.35 / darkened.mean(dim=(1, 2, 3), keepdim=True).clamp(min=1e-4)  # auto-exposure brings it back up
    out = night * (darkened * gain.clamp(max=20.0)) + (1.0 - night) * out

    # veiling glare and haze towards a low sun near the horizon, and a flare blob
    glare = _chance(generator, batch, config.p_glare, device).view(view).to(out.dtype)
    strength = _uniform(generator, batch, config.glare_strength_range, device).view(view)
    sun_x = _uniform(generator, batch, (-0.8, 0.8), device).view(view)
    sun_y = _uniform(generator, batch, (-0.9, -0.3), device).view(view)
    distance = torch.sqrt((x - sun_x) ** 2 + ((y - sun_y) * 1.3) ** 2)
    veil = strength * (0.35 + 0.65 * torch.exp(-distance / 0.5))
    flare_colour = torch.tensor([1.0, 0.85, 0.6], device=device).view(1, 3, 1, 1)
    flare = 0.6 * strength * torch.exp(-(((x + sun_x * 0.6) ** 2 + (y + sun_y * 0.6) ** 2) / 0.02))
    hazy = out * (1.0 - 0.6 * veil) + (veil + flare) * flare_colour
    out = glare * hazy + (1.0 - glare) * out

    # camera: tone (gamma, contrast, saturation) in display space, vignetting, blur, noise
    out = out.clamp(0.0, 1.0) ** (1.0 / 2.2)
    log_gamma = _uniform(generator, batch, [math.log(bound) for bound in config.gamma_range], device)
    out = out.clamp(min=1e-6) ** torch.exp(log_gamma).view(view)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * _uniform(generator, batch, config.contrast_range, device).view(view) + mean
    grey = out.mean(dim=1, keepdim=True)
    out = grey + (out - grey) * _uniform(generator, batch, config.saturation_range, device).view(view)
    vignette = _chance(generator, batch, config.p_vignette, device).view(view).to(out.dtype)
    falloff = _uniform(generator, batch, config.vignette_range, device).view(view)
    out = out * (1.0 - vignette * falloff * (x**2 + y**2) / 2.0)
    blurred = _chance(generator, batch, config.p_blur)
    if bool(blurred.any()):
        out = torch.cat(
            [_blur(out[i : i + 1], generator, config) if blurred[i] else out[i : i + 1] for i in range(batch)]
        )
    out = out.clamp(0.0, 1.0)
    read = _uniform(generator, batch, config.read_noise_range, device).view(view)
    shot = _uniform(generator, batch, config.shot_noise_range, device).view(view)
    amplification = 1.0 + night * 0.25 * (gain.clamp(max=20.0) - 1.0).clamp(min=0.0)  # night gain lifts the noise
    noise_generator = torch.Generator(device).manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
    noise = torch.randn(out.shape, generator=noise_generator, device=device) * (read + shot * torch.sqrt(out))
    noise = noise * amplification
    return (out + noise).clamp(0.0, 1.0).to(dtype)
