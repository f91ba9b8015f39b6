"""Photometric augmentation: reproducible from the generator, images stay images, each change does what it says."""

import dataclasses

import pytest
import torch

from dlvf_ros.training.augment import AugmentConfig, augment_images

ON = AugmentConfig(enabled=True)
# every random effect of ON off (probabilities 0, spreads 0, ranges at the identity)
QUIET_FIELDS = {
    "p_night": 0.0,
    "p_glare": 0.0,
    "p_vignette": 0.0,
    "p_blur": 0.0,
    "exposure_log2_std": 0.0,
    "white_balance_std": 0.0,
    "gamma_range": [1.0, 1.0],
    "contrast_range": [1.0, 1.0],
    "saturation_range": [1.0, 1.0],
    "read_noise_range": [0.0, 0.0],
    "shot_noise_range": [0.0, 0.0],
}


def _only(**effect) -> AugmentConfig:
    """ON with every random effect off except `effect`."""
    return dataclasses.replace(ON, **{**QUIET_FIELDS, **effect})


def _images(batch: int = 4) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(batch, 3, 48, 64) * 0.6 + 0.2


def test_disabled_is_the_identity_and_enabled_is_reproducible():
    images = _images()
    assert augment_images(images, torch.Generator().manual_seed(0), AugmentConfig()) is images
    first = augment_images(images, torch.Generator().manual_seed(7), ON)
    again = augment_images(images, torch.Generator().manual_seed(7), ON)
    other = augment_images(images, torch.Generator().manual_seed(8), ON)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.shape == images.shape and first.dtype == images.dtype
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0 and torch.isfinite(first).all()
    assert torch.equal(images, _images())  # the input is not modified


def test_each_image_gets_its_own_draw():
    images = _images(1).repeat(6, 1, 1, 1)
    out = augment_images(images, torch.Generator().manual_seed(1), ON)
    means = out.mean(dim=(1, 2, 3))
    assert len({round(float(m), 4) for m in means}) == 6


def test_night_darkens_the_top_more_than_the_headlit_bottom():
    quiet = _only(p_night=1.0)
    flat = torch.full((2, 3, 48, 64), 0.5)
    out = augment_images(flat, torch.Generator().manual_seed(2), quiet)
    top, bottom = out[:, :, :8].mean(), out[:, :, -8:].mean()
    assert float(bottom) > 2.0 * float(top)


def test_glare_lifts_dark_pixels_and_lowers_contrast():
    glare_only = _only(p_glare=1.0, glare_strength_range=[0.5, 0.5])
    images = _images(2)
    out = augment_images(images, torch.Generator().manual_seed(3), glare_only)
    assert float(out.min()) > float(images.min()) + 0.05
    assert float(out.std()) < float(images.std())


def test_bad_ranges_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="gamma_range"):
        AugmentConfig(gamma_range=[1.5, 0.5])
    with pytest.raises(ValueError, match="p_glare"):
        AugmentConfig(p_glare=1.5)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        augment_images(torch.rand(3, 8, 8), torch.Generator(), ON)
