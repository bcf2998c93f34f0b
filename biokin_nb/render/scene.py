"""The rendered scene's look: clothing as mesh-region colourings, light and background.

Clothing is painted onto the body mesh: every vertex belongs to a body region (from the
body model's dominant skinning bone) and a garment colours a set of regions. Textures are
procedural patterns evaluated on the *rest-pose* vertices (m, ground frame, Y up), so a
pattern moves with the skin. A :class:`SceneStyle` holds everything random about one clip
(garments, textures, colours, skin, lights, background); :func:`random_scene` draws one
and :func:`vertex_colours` turns it into (V, 3) uint8 colours.

Garment types: upper ``UPPER_GARMENTS`` (4), lower ``LOWER_GARMENTS`` (4); each with any
of ``TEXTURES`` (5 patterns) in any of ``PALETTES`` (8 colour schemes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Body regions by the name of the dominant skinning bone (Anny / MakeHuman bone names;
# SMPL-X names are matched by the second keyword list).
REGION_KEYWORDS: dict[str, tuple[str, ...]] = {
    "head": ("neck", "head", "eye", "jaw"),
    "hand": ("wrist", "finger", "metacarpal", "thumb", "index", "middle", "ring", "pinky"),
    "forearm": ("lowerarm", "elbow"),
    "upperarm": ("upperarm", "shoulder"),
    "torso": ("spine", "clavicle", "collar"),
    "pelvis": ("root", "pelvis", "hip"),
    "thigh": ("upperleg", "thigh"),
    "shin": ("lowerleg", "knee", "calf"),
    "foot": ("foot", "toe", "ankle"),
}
REGIONS: tuple[str, ...] = tuple(REGION_KEYWORDS)

# Garment -> ((region, fraction kept from the top of the region in the rest pose), ...).
UPPER_GARMENTS: dict[str, tuple[tuple[str, float], ...]] = {
    "tank_top": (("torso", 1.0),),
    "t_shirt": (("torso", 1.0), ("upperarm", 1.0)),
    "long_sleeve": (("torso", 1.0), ("upperarm", 1.0), ("forearm", 1.0)),
    "jacket": (("torso", 1.0), ("upperarm", 1.0), ("forearm", 1.0)),
}
LOWER_GARMENTS: dict[str, tuple[tuple[str, float], ...]] = {
    "briefs": (("pelvis", 1.0), ("thigh", 0.3)),
    "shorts": (("pelvis", 1.0), ("thigh", 0.75)),
    "capri": (("pelvis", 1.0), ("thigh", 1.0), ("shin", 0.5)),
    "trousers": (("pelvis", 1.0), ("thigh", 1.0), ("shin", 1.0)),
}
TEXTURES: tuple[str, ...] = ("solid", "stripes", "checker", "two_tone", "speckle")
# (base, accent) RGB colour schemes.
PALETTES: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
    ((200, 40, 40), (245, 245, 245)),
    ((30, 60, 150), (230, 200, 60)),
    ((40, 120, 60), (20, 20, 20)),
    ((235, 235, 235), (60, 60, 60)),
    ((25, 25, 30), (200, 30, 120)),
    ((120, 80, 160), (250, 170, 60)),
    ((90, 140, 200), (25, 40, 90)),
    ((60, 110, 110), (230, 230, 120)),
)
SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (255, 220, 190),
    (240, 195, 160),
    (210, 160, 120),
    (175, 120, 85),
    (130, 85, 60),
    (90, 60, 45),
)
SHOE_COLOURS: tuple[tuple[int, int, int], ...] = ((30, 30, 30), (240, 240, 240), (120, 60, 40))


@dataclass(frozen=True)
class Garment:
    """One garment: its type, texture and colour scheme (an index into ``PALETTES``)."""

    kind: str
    texture: str
    palette: int


@dataclass(frozen=True)
class Lighting:
    """Lights: a key light from ``azimuth_deg`` (about Y, 0 = +X) and ``elevation_deg``
    above the horizon, a fill light from the opposite side, and an ambient term."""

    key_intensity: float
    fill_intensity: float
    azimuth_deg: float
    elevation_deg: float
    ambient: float


@dataclass(frozen=True)
class Background:
    """Floor colour and the backdrop's bottom and top colours (RGB 0-255)."""

    floor: tuple[int, int, int]
    bottom: tuple[int, int, int]
    top: tuple[int, int, int]


@dataclass(frozen=True)
class SceneStyle:
    """Everything random about a clip's look."""

    upper: Garment
    lower: Garment
    skin: tuple[int, int, int]
    shoes: tuple[int, int, int]
    lighting: Lighting
    background: Background

    def to_json(self) -> dict:
        return asdict(self)


def random_scene(rng: np.random.Generator) -> SceneStyle:
    """A random clothing, light and background choice."""

    def garment(kinds: dict) -> Garment:
        return Garment(
            str(rng.choice(list(kinds))),
            str(rng.choice(TEXTURES)),
            int(rng.integers(len(PALETTES))),
        )

    def colour(lo: int, hi: int) -> tuple[int, int, int]:
        return tuple(int(c) for c in rng.integers(lo, hi, 3))

    grey = int(rng.integers(60, 200))
    tint = rng.integers(-25, 26, 3)
    floor = tuple(int(np.clip(grey + c, 0, 255)) for c in tint)
    return SceneStyle(
        upper=garment(UPPER_GARMENTS),
        lower=garment(LOWER_GARMENTS),
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        shoes=SHOE_COLOURS[int(rng.integers(len(SHOE_COLOURS)))],
        lighting=Lighting(
            key_intensity=float(rng.uniform(0.6, 1.0)),
            fill_intensity=float(rng.uniform(0.2, 0.5)),
            azimuth_deg=float(rng.uniform(0, 360)),
            elevation_deg=float(rng.uniform(30, 75)),
            ambient=float(rng.uniform(0.15, 0.35)),
        ),
        background=Background(floor=floor, bottom=colour(40, 200), top=colour(120, 250)),
    )


def vertex_regions(bone_names: tuple[str, ...], dominant_bones: np.ndarray) -> np.ndarray:
    """(V,) region index (into ``REGIONS``) of each vertex from its dominant bone.

    Args:
        bone_names: the body model's bone names.
        dominant_bones: (V,) bone index of each vertex.

    Raises:
        ValueError: a bone name matches no region (the keywords need extending).
    """
    bone_region = np.empty(len(bone_names), dtype=np.int64)
    for b, name in enumerate(bone_names):
        key = name.lower()
        hits = [
            i for i, words in enumerate(REGION_KEYWORDS.values()) if any(w in key for w in words)
        ]
        if not hits:
            raise ValueError(f"bone {name!r} matches no body region; extend REGION_KEYWORDS")
        bone_region[b] = hits[0]
    return bone_region[np.asarray(dominant_bones)]


def _pattern(texture: str, rest: np.ndarray) -> np.ndarray:
    """(V,) bool: where the accent colour goes, from rest-pose vertices (V, 3) m."""
    x, y, z = rest[:, 0], rest[:, 1], rest[:, 2]
    if texture == "solid":
        return np.zeros(len(rest), dtype=bool)
    if texture == "stripes":
        return np.sin(2 * np.pi * y / 0.08) > 0.3
    if texture == "checker":
        cells = np.floor(x / 0.06) + np.floor(y / 0.06) + np.floor(z / 0.06)
        return cells.astype(np.int64) % 2 == 0
    if texture == "two_tone":
        return y > np.median(y)
    if texture == "speckle":
        noise = np.sin(x * 913.1 + y * 487.3 + z * 271.9) * 43758.5453
        return (noise - np.floor(noise)) > 0.8
    raise ValueError(f"unknown texture {texture!r}; choose one of {', '.join(TEXTURES)}")


def _paint(
    colours: np.ndarray, where: np.ndarray, garment: Garment, rest: np.ndarray
) -> np.ndarray:
    base, accent = (np.array(c, dtype=np.uint8) for c in PALETTES[garment.palette])
    accented = where & _pattern(garment.texture, rest)
    colours[where] = base
    colours[accented] = accent
    if garment.kind == "jacket":  # a zip down the front centre
        front = where & (np.abs(rest[:, 2] - np.median(rest[where, 2])) < 0.012)
        colours[front & (rest[:, 0] > np.median(rest[where, 0]))] = accent
    return colours


def _garment_mask(
    regions: np.ndarray, garment: Garment, table: dict, rest: np.ndarray
) -> np.ndarray:
    """(V,) bool: the vertices ``garment`` covers."""
    if garment.kind not in table:
        raise ValueError(f"unknown garment {garment.kind!r}; choose one of {', '.join(table)}")
    where = np.zeros(len(regions), dtype=bool)
    for region, fraction in table[garment.kind]:
        inside = regions == REGIONS.index(region)
        if inside.any() and fraction < 1.0:
            inside &= rest[:, 1] >= np.quantile(rest[inside, 1], 1.0 - fraction)
        where |= inside
    return where


def vertex_colours(style: SceneStyle, regions: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """(V, 3) uint8 vertex colours of the clothed body.

    Args:
        style: the clip's look.
        regions: (V,) region index of each vertex (:func:`vertex_regions`).
        rest: (V, 3) rest-pose vertices (m, Y up) the textures are laid on.
    """
    rest = np.asarray(rest, dtype=np.float64)
    if rest.shape != (len(regions), 3):
        raise ValueError(f"rest must have shape ({len(regions)}, 3); got {rest.shape}")
    colours = np.empty((len(regions), 3), dtype=np.uint8)
    colours[:] = style.skin
    colours[regions == REGIONS.index("foot")] = style.shoes
    lower = _garment_mask(regions, style.lower, LOWER_GARMENTS, rest)
    upper = _garment_mask(regions, style.upper, UPPER_GARMENTS, rest)
    _paint(colours, lower, style.lower, rest)
    _paint(colours, upper & ~lower, style.upper, rest)
    return colours
