"""The learned feature network: a U-Net giving keypoints, descriptors and scores from one RGB image.

One encoder (widths m, 2m, 4m, 8m, 16m; blocks of (3x3 conv, BatchNorm, ReLU) x2; 4 max-pools) and two decoders of
the same shape (bilinear x2 up, align_corners=True, + skip concatenation): decoder 1 gives keypoint logits, decoder 2
scores through a sigmoid applied once, inside the network. Descriptors come from all 5 encoder levels (C = 31 m),
sampled at the keypoints level by level (`sampling.sample_descriptors`) instead of building the full-resolution
31m-channel map, and normalised so dot(d1, d2) / C is the ZNCC. Keypoints: one spatial soft-argmax per 16x16 cell.
Pixel coordinates: integer values at pixel centres (docs/conventions.md).
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from dlvf_ros.features.keypoints import check_image_size, soft_argmax_keypoints
from dlvf_ros.features.sampling import dense_descriptors, normalize_descriptors, sample_descriptors, sample_scores

LEVELS = 5  # encoder levels; widths m * 2**level


class ConvBlock(nn.Sequential):
    """(3x3 conv, BatchNorm, ReLU) x 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Encoder(nn.Module):
    """Image [B, 3, H, W] -> 5 feature maps; level l has m * 2**l channels at (H / 2**l, W / 2**l)."""

    def __init__(self, m: int) -> None:
        super().__init__()
        widths = [m * 2**level for level in range(LEVELS)]
        pairs = itertools.pairwise(widths)
        self.blocks = nn.ModuleList([ConvBlock(3, widths[0])] + [ConvBlock(a, b) for a, b in pairs])

    def forward(self, image: torch.Tensor) -> List[torch.Tensor]:
        maps: List[torch.Tensor] = []
        x = image
        for level, block in enumerate(self.blocks):
            if level > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            maps.append(x)
        return maps


class Decoder(nn.Module):
    """Encoder maps -> full-resolution maps [B, outputs, H, W] (logits, no activation)."""

    def __init__(self, m: int, outputs: int = 1) -> None:
        super().__init__()
        widths = [m * 2**level for level in range(LEVELS)]
        # up from level l+1 (widths[l+1] channels after its block) concatenated with skip level l -> widths[l]
        self.blocks = nn.ModuleList(
            [ConvBlock(widths[level + 1] + widths[level], widths[level]) for level in reversed(range(LEVELS - 1))]
        )
        self.head = nn.Conv2d(widths[0], outputs, 1)

    def forward(self, encoder_maps: List[torch.Tensor]) -> torch.Tensor:
        x = encoder_maps[-1]
        for i, block in enumerate(self.blocks):
            skip = encoder_maps[-2 - i]
            x = F.interpolate(x, size=(skip.shape[2], skip.shape[3]), mode="bilinear", align_corners=True)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


class SeparateDecoders(nn.Module):
    """The reference: a keypoint-logit decoder and a score decoder of the same shape.
    Encoder maps -> (keypoint logits [B, 1, H, W], scores [B, 1, H, W] after the sigmoid)."""

    def __init__(self, m: int) -> None:
        super().__init__()
        self.keypoint_decoder = Decoder(m)
        self.score_decoder = Decoder(m)

    def forward(self, encoder_maps: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.keypoint_decoder(encoder_maps), torch.sigmoid(self.score_decoder(encoder_maps))


class SharedDecoder(nn.Module):
    """One decoder with two output channels (keypoint logits, score logits): ~0.6x the reference network's time on
    a CPU (the decoders dominate it), same outputs as `SeparateDecoders`. Not in the reference."""

    def __init__(self, m: int) -> None:
        super().__init__()
        self.decoder = Decoder(m, outputs=2)

    def forward(self, encoder_maps: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        logits = self.decoder(encoder_maps)
        return logits[:, :1], torch.sigmoid(logits[:, 1:])


def _legacy_decoder_names(module, state_dict, prefix, *args) -> None:
    """Checkpoints from before `heads` existed name the reference decoders at the top level: move them under it."""
    for name in ("keypoint_decoder", "score_decoder"):
        for key in [k for k in state_dict if k.startswith(f"{prefix}{name}.")]:
            state_dict[f"{prefix}heads.{key[len(prefix) :]}"] = state_dict.pop(key)


class FeatureNet(nn.Module):
    """U-Net feature network. `FeatureNet({"m": 32})` or `FeatureNet(m=32)`; unknown options are an error.

    forward({"image": [B, 3, H, W] float RGB in [0, 1], H and W multiples of 16}) -> dict with
      keypoints [B, N, 2] (u, v px), keypoint_scores [B, N] in (0, 1), descriptors [B, N, C] (normalised),
      score_map [B, 1, H, W] (after the sigmoid), keypoint_logits [B, 1, H, W], encoder_maps (list of 5 maps),
      with N = (H / 16)(W / 16) and C = 31 m.
    """

    default_conf: ClassVar[dict] = {
        "m": 16,  # encoder base width: 16 (2.75 M parameters) or 32 (11 M)
        "cell": 16,  # keypoint cell size (px): 8 or a multiple of 16
        "temperature": 1.0,  # soft-argmax softmax temperature over a cell's logits
        "shared_decoder": False,  # (ours) one decoder for keypoint logits and scores instead of two
    }

    def __init__(self, conf: dict | None = None, **options) -> None:
        super().__init__()
        merged = {**self.default_conf, **(conf or {}), **options}
        unknown = sorted(set(merged) - set(self.default_conf))
        if unknown:
            raise ValueError(f"FeatureNet: unknown option(s) {unknown}; known: {sorted(self.default_conf)}")
        if not isinstance(merged["m"], int) or merged["m"] <= 0:
            raise ValueError(f"FeatureNet: m must be a positive integer (16 or 32), got {merged['m']!r}")
        if merged["cell"] != 8 and merged["cell"] % 2 ** (LEVELS - 1) != 0:
            raise ValueError(f"FeatureNet: cell must be 8 or a multiple of {2 ** (LEVELS - 1)}, got {merged['cell']}")
        if not merged["temperature"] > 0:
            raise ValueError(f"FeatureNet: temperature must be positive, got {merged['temperature']}")
        self.conf = merged
        self.encoder = Encoder(merged["m"])
        self.heads = SharedDecoder(merged["m"]) if merged["shared_decoder"] else SeparateDecoders(merged["m"])
        self.register_load_state_dict_pre_hook(_legacy_decoder_names)

    @property
    def input_multiple(self) -> int:
        """Input height and width must be multiples of this: the 4 poolings (16) and the keypoint cell."""
        return math.lcm(2 ** (LEVELS - 1), self.conf["cell"])

    @property
    def descriptor_dim(self) -> int:
        """C = m (1 + 2 + 4 + 8 + 16) = 31 m."""
        return self.conf["m"] * (2**LEVELS - 1)

    def check_input(self, image: torch.Tensor) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"FeatureNet: expected image [B, 3, H, W] float RGB in [0, 1], got {tuple(image.shape)}")
        if not image.is_floating_point():
            raise ValueError(f"FeatureNet: image must be float in [0, 1], got {image.dtype}; divide uint8 by 255")
        check_image_size(int(image.shape[2]), int(image.shape[3]), self.input_multiple, "FeatureNet input image")

    def forward(self, data: dict) -> dict:
        image = data["image"]
        self.check_input(image)
        image_size = (int(image.shape[2]), int(image.shape[3]))
        encoder_maps = self.encoder(image)
        keypoint_logits, score_map = self.heads(encoder_maps)
        keypoints = soft_argmax_keypoints(keypoint_logits, self.conf["cell"], self.conf["temperature"])
        return {
            "keypoints": keypoints,
            "keypoint_scores": sample_scores(score_map, keypoints),
            "descriptors": sample_descriptors(encoder_maps, keypoints, image_size),
            "score_map": score_map,
            "keypoint_logits": keypoint_logits,
            "encoder_maps": encoder_maps,
        }

    def dense(self, image: torch.Tensor) -> dict:
        """Reference-style dense outputs: descriptor_map [B, C, H, W] normalised per pixel, score_map [B, 1, H, W]."""
        self.check_input(image)
        encoder_maps = self.encoder(image)
        descriptor_map = normalize_descriptors(dense_descriptors(encoder_maps, (image.shape[2], image.shape[3])), dim=1)
        return {"descriptor_map": descriptor_map, "score_map": self.heads(encoder_maps)[1]}
