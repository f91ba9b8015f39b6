"""World styles: one named member of each family of appearance variation, drawn from the world seed.

A `Style` names the ground and trail surfaces, the rock shapes, the trees, the undergrowth, the man-made objects,
the terrain, the sky and weather, the camera and the headlights of a world. `draw_style(seed)` draws one member of
each family (one random stream per family) and never returns a member of `HELD_OUT`: those are kept for honest
testing (training and checkpoint selection must not see them). `draw_style(seed, held_out=HELD_OUT)` makes a world
of held-out members. A second set, `HELD_OUT_VALIDATION`, serves checkpoint selection: ``training`` worlds never draw
it either, ``held_out_validation`` worlds are made of it, so selection measures holding on unseen members without
touching the test members. `parse_style(spec, seed)` reads a spec such as ``"classic"``, ``"drawn"``,
``"training"``, ``"held_out_test"``, ``"ground=snow,camera=cheap_cmos"`` or ``"demo,sky=foggy"`` (a base, then
overrides by name).

The members' methods live where they are used: surfaces in textures.py, objects and terrain in world.py, sky and
headlights in lighting.py, cameras in camera.py (each registry is keyed by exactly the names below).
config/styles.yaml mirrors `HELD_OUT` and `PRESETS` (a test keeps them equal).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

# family -> members (the order is the draw order; never reorder, or every drawn world changes)
FAMILIES: dict[str, tuple[str, ...]] = {
    "ground": ("meadow", "dry_grass", "sand", "forest_litter", "snow", "moss", "bare_soil"),
    "trail": ("dirt_two_track", "gravel", "paved", "sand", "mud", "planks", "worn_grass"),
    "rocks": ("rounded", "angular", "slabs"),
    "trees": ("conifer", "pine", "broadleaf", "mixed"),
    "undergrowth": ("bushes", "tufts", "stumps", "logs"),
    "man_made": ("none", "posts", "fence", "barrels", "wall"),
    "terrain": ("flat_open", "rolling_open", "rolling_forest", "hilly_forest", "sunken_cut"),
    "sky": ("clear", "hazy", "broken", "overcast", "foggy"),
    "camera": ("classic", "machine_vision", "consumer", "cheap_cmos", "rolling_industrial", "dashcam"),
    "headlights": ("halogen", "led_flood", "led_spot", "dim_amber"),
}
# families that shape the world's geometry and textures; the others only change how it is rendered
WORLD_FAMILIES = ("ground", "trail", "rocks", "trees", "undergrowth", "man_made", "terrain")

# Members that training and checkpoint selection never draw, fixed before any training: one ground and one trail
# surface, broadleaf trees (and `mixed`, which contains them) and logs, and one camera profile.
HELD_OUT: dict[str, tuple[str, ...]] = {
    "ground": ("forest_litter",),
    "trail": ("gravel",),
    "trees": ("broadleaf", "mixed"),
    "undergrowth": ("logs",),
    "camera": ("rolling_industrial",),
}

# Members kept for checkpoint and model selection (fixed before stage 4 trained): `training` worlds never draw them,
# `held_out_validation` worlds are made of them. (Stage 3's `drawn` worlds did draw them.)
HELD_OUT_VALIDATION: dict[str, tuple[str, ...]] = {
    "ground": ("moss",),
    "trail": ("planks",),
    "undergrowth": ("stumps",),
    "man_made": ("barrels",),
    "camera": ("cheap_cmos",),
}

# Members that no draw returns, only a name (`camera=dashcam`): added after worlds had been drawn, they would change
# every drawn world if they were drawn. dashcam: a validation-only camera for hard nights (highlight metering), so that
# model selection sees nights as dark as the held-out camera's without seeing that camera (models/README.md, stage 15).
NAMED_ONLY: dict[str, tuple[str, ...]] = {
    "camera": ("dashcam",),
}

# spec bases that draw from the seed: any non-test member / neither held-out set / test members / validation members
DRAW_MODES = ("drawn", "training", "held_out_test", "held_out_validation")


@dataclass(frozen=True)
class Style:
    """One member of each family (see FAMILIES). The defaults are the classic look (the only one before styles)."""

    ground: str = "meadow"
    trail: str = "dirt_two_track"
    rocks: str = "rounded"
    trees: str = "mixed"
    undergrowth: str = "bushes"
    man_made: str = "none"
    terrain: str = "rolling_open"
    sky: str = "clear"
    camera: str = "classic"
    headlights: str = "halogen"

    def __post_init__(self) -> None:
        for family, member in self.to_dict().items():
            if member not in FAMILIES[family]:
                raise ValueError(f"style: unknown {family} {member!r}; choose one of {', '.join(FAMILIES[family])}")

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @property
    def spec(self) -> str:
        """The explicit spec that `parse_style` turns back into this style."""
        return ",".join(f"{family}={member}" for family, member in self.to_dict().items())

    @property
    def held_out_members(self) -> dict[str, str]:
        """The families of this style whose member is held out."""
        return {f: m for f, m in self.to_dict().items() if m in HELD_OUT.get(f, ())}

    @property
    def classic_world(self) -> bool:
        """Whether the geometry and textures are the classic ones (generated exactly as before styles existed)."""
        classic = Style()
        return all(getattr(self, f) == getattr(classic, f) for f in WORLD_FAMILIES)


PRESETS: dict[str, Style] = {
    "classic": Style(),
    # the demo world: every held-out member, in a forest with a fence, at any lighting
    "demo": Style(
        ground="forest_litter",
        trail="gravel",
        rocks="angular",
        trees="broadleaf",
        undergrowth="logs",
        man_made="fence",
        terrain="rolling_forest",
        sky="clear",
        camera="rolling_industrial",
        headlights="led_flood",
    ),
}


def draw_style(
    seed: int,
    held_out: dict[str, tuple[str, ...]] | None = None,
    exclude: dict[str, tuple[str, ...]] | None = None,
) -> Style:
    """The style of world `seed`: one member per family, each family from its own stream of the seed.

    Training draws (no `held_out`) never return a member of HELD_OUT, NAMED_ONLY or `exclude` (family -> members).
    With a held-out set (family -> members: HELD_OUT, HELD_OUT_VALIDATION), its families are drawn among its members
    only (`exclude` is not applied to them), so the world is made of members that training never saw."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"draw_style: seed must be a non-negative integer, got {seed!r}")
    exclude = exclude or {}
    unknown = sorted(set(exclude) - set(FAMILIES))
    if unknown:
        raise ValueError(f"draw_style: unknown families {unknown} in exclude; families: {', '.join(FAMILIES)}")
    held_out = held_out or {}
    chosen = {}
    for index, (family, members) in enumerate(FAMILIES.items()):
        if family in held_out:
            allowed = list(held_out[family])
        else:
            banned = set(HELD_OUT.get(family, ())) | set(NAMED_ONLY.get(family, ())) | set(exclude.get(family, ()))
            allowed = [m for m in members if m not in banned]
        if not allowed:
            raise ValueError(f"draw_style: every {family} member is excluded")
        rng = np.random.default_rng([int(seed), 0x57E1E, index])
        chosen[family] = allowed[int(rng.integers(len(allowed)))]
    return Style(**chosen)


def parse_style(spec: str, seed: int) -> Style:
    """Style from a spec: an optional base (a preset name or one of DRAW_MODES; default ``drawn``), then
    comma-separated ``family=member`` overrides, e.g. ``"ground=snow,camera=cheap_cmos"`` or ``"classic,sky=foggy"``.
    The drawn bases use the world seed."""
    tokens = [t.strip() for t in str(spec).split(",") if t.strip()]
    base = "drawn"
    if tokens and "=" not in tokens[0]:
        base = tokens.pop(0)
    if base == "drawn":
        style = draw_style(seed)
    elif base == "training":
        style = draw_style(seed, exclude=HELD_OUT_VALIDATION)
    elif base == "held_out_test":
        style = draw_style(seed, held_out=HELD_OUT)
    elif base == "held_out_validation":
        style = draw_style(seed, held_out=HELD_OUT_VALIDATION)
    elif base in PRESETS:
        style = PRESETS[base]
    else:
        raise ValueError(
            f"style: unknown base {base!r} in {spec!r}; use one of {', '.join([*DRAW_MODES, *PRESETS])} "
            "or family=member overrides"
        )
    overrides = {}
    for token in tokens:
        family, _, member = (part.strip() for part in token.partition("="))
        if family not in FAMILIES or not member:
            raise ValueError(f"style: {token!r} in {spec!r} is not family=member; families: {', '.join(FAMILIES)}")
        overrides[family] = member
    return dataclasses.replace(style, **overrides)


def covering_styles() -> list[Style]:
    """As many styles as the largest family has members, style k taking member k (cyclically) of every family:
    together they use every member (contact sheets and tests)."""
    count = max(len(members) for members in FAMILIES.values())
    return [Style(**{f: members[k % len(members)] for f, members in FAMILIES.items()}) for k in range(count)]


def style_spec_from_yaml(path: str | Path) -> str:
    """A spec from a YAML mapping: optional ``base`` (a preset or one of DRAW_MODES) and ``family: member`` keys."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"style file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"style file {path}: expected a mapping of family: member (and an optional base: preset)")
    data = dict(data)
    base = data.pop("base", "drawn")
    return ",".join([base, *(f"{family}={member}" for family, member in data.items())])
