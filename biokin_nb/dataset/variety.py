"""How varied a generated dataset is: distributions read from its index and clip metadata.

:func:`variety_report` reads ``index.csv`` and every clip's ``meta.json`` (see
:mod:`biokin_nb.dataset.format`) and returns a :class:`VarietyReport`:

- counts (categorical): actions, splits, upper / lower garment types, their textures and
  colour schemes (palette indices of :data:`biokin_nb.render.scene.PALETTES`), handedness
  of the subjects' motion style, sex (from the body shape's ``gender`` phenotype when the
  body model records one; Anny: 0 male .. 1 female, a blend, so < 0.5 counts as male);
- values (numeric, one per clip): camera heights of both views (m), light (key and fill
  intensity, key azimuth and elevation in degrees, ambient), background brightness (mean
  floor and backdrop RGB, 0-255), the motion style's factors;
- body shapes, one row per subject: standing height (m) and every shape parameter the body
  model recorded (Anny: gender, age, muscle, weight, height, proportions in [0, 1]); the
  body mass is not recorded by the generator.

Metadata keys that older datasets lack (``motion_style``) are listed in ``missing``
instead of failing. :meth:`VarietyReport.table` prints it; :meth:`VarietyReport.figure`
draws it with plotly.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biokin_nb.dataset.format import read_index

LIGHT_KEYS = ("key_intensity", "fill_intensity", "azimuth_deg", "elevation_deg", "ambient")


@dataclass
class VarietyReport:
    """Distributions over a dataset's clips.

    Attributes:
        root: the dataset folder.
        n_clips: clips read (rows of index.csv).
        counts: category name -> {value: clips}, e.g. ``counts["action"]["walking"]``.
        values: quantity name -> (n_clips,) values, e.g. ``values["camera_height_view0_m"]``.
        subjects: shape quantity name -> (n_subjects,) values, one per subject (sorted by
            subject name), e.g. ``subjects["height_m"]``.
        missing: metadata keys no clip recorded (older datasets).
    """

    root: Path
    n_clips: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    subjects: dict[str, np.ndarray] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def n_subjects(self) -> int:
        return len(self.counts.get("subject", {}))

    def table(self) -> str:
        """A plain-text table: counts per category, then min / mean / max of the values."""
        lines = [f"{self.root}: {self.n_clips} clips, {self.n_subjects} subjects"]
        for name, counts in self.counts.items():
            if name == "subject":
                continue
            shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=_by_count))
            lines.append(f"{name} ({len(counts)} kinds): {shown}")
        for title, table in (("per clip", self.values), ("per subject", self.subjects)):
            lines.append(f"{title:<28s} {'min':>8s} {'mean':>8s} {'max':>8s}")
            for name, v in table.items():
                lines.append(f"  {name:<26s} {v.min():8.3f} {v.mean():8.3f} {v.max():8.3f}")
        if self.missing:
            lines.append(f"not recorded: {', '.join(self.missing)}")
        return "\n".join(lines)

    def figure(self, columns: int = 4):
        """A plotly figure: a bar chart per category, a histogram per quantity."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        bars = {k: v for k, v in self.counts.items() if k != "subject"}
        hists = {**self.values, **{f"subject {k}": v for k, v in self.subjects.items()}}
        titles = list(bars) + list(hists)
        rows = -(-len(titles) // columns)
        fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles)
        for i, (name, counts) in enumerate(bars.items()):
            items = sorted(counts.items(), key=_by_count)
            bar = go.Bar(x=[k for k, _ in items], y=[n for _, n in items], name=name)
            fig.add_trace(bar, row=i // columns + 1, col=i % columns + 1)
        for i, (name, v) in enumerate(hists.items(), start=len(bars)):
            fig.add_trace(go.Histogram(x=v, name=name), row=i // columns + 1, col=i % columns + 1)
        fig.update_layout(
            height=260 * rows,
            showlegend=False,
            title=f"Dataset variety: {self.n_clips} clips, {self.n_subjects} subjects",
        )
        return fig


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


def read_clip_meta(root: str | Path) -> list[dict]:
    """Every clip's ``meta.json`` in index order (the index's ``action`` / ``split`` fill
    in when the meta lacks them).

    Raises:
        FileNotFoundError: no index.csv, or a listed clip without its meta.json.
    """
    root = Path(root)
    metas = []
    for row in read_index(root):
        path = root / "clips" / row["clip"] / "meta.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; regenerate clip {row['clip']}")
        meta = json.loads(path.read_text(encoding="utf-8"))
        metas.append({"action": row["action"], "split": row["split"], **meta, **_index(row)})
    return metas


def _index(row: dict) -> dict:
    return {"subject": row["subject"], "clip": row["clip"]}


def variety_report(root: str | Path) -> VarietyReport:
    """The :class:`VarietyReport` of the dataset in ``root`` (see the module docstring).

    Raises:
        FileNotFoundError: no index.csv or a clip's meta.json missing.
        ValueError: the index lists no clips.
    """
    root = Path(root)
    metas = read_clip_meta(root)
    if not metas:
        raise ValueError(f"{root}/index.csv lists no clips; generate some first")
    report = VarietyReport(root, len(metas))
    report.counts = _counts(metas)
    report.values = _values(metas)
    report.subjects = _subjects(metas)
    wanted = ("garments", "textures", "scene", "camera_heights_m", "body_shape", "motion_style")
    report.missing = [k for k in wanted if not any(k in m for m in metas)]
    return report


def _counts(metas: list[dict]) -> dict[str, dict[str, int]]:
    """Category -> {value: clips}; categories absent from every meta are left out."""
    getters = {
        "action": lambda m: _action_label(m["action"]),
        "split": lambda m: m["split"],
        "subject": lambda m: m["subject"],
        "upper garment": lambda m: m["garments"]["upper"],
        "lower garment": lambda m: m["garments"]["lower"],
        "upper texture": lambda m: m["textures"]["upper"],
        "lower texture": lambda m: m["textures"]["lower"],
        "upper palette": lambda m: str(m["scene"]["upper"]["palette"]),
        "lower palette": lambda m: str(m["scene"]["lower"]["palette"]),
        "handedness": lambda m: m["motion_style"]["handedness"],
        "sex": lambda m: _sex(m["body_shape"]["shape"]["gender"]),
    }
    out = {}
    for name, get in getters.items():
        found = [v for v in map(_safe(get), metas) if v is not None]
        if found:
            out[name] = dict(Counter(found))
    return out


def _values(metas: list[dict]) -> dict[str, np.ndarray]:
    """Quantity -> (n_clips,) values (quantities some clip lacks are left out)."""
    getters = {
        "camera_height_view0_m": lambda m: m["camera_heights_m"][0],
        "camera_height_view1_m": lambda m: m["camera_heights_m"][1],
        **{f"light_{k}": (lambda m, k=k: m["scene"]["lighting"][k]) for k in LIGHT_KEYS},
        "floor_brightness": lambda m: np.mean(m["scene"]["background"]["floor"]),
        "backdrop_brightness": lambda m: np.mean(
            [m["scene"]["background"]["bottom"], m["scene"]["background"]["top"]]
        ),
    }
    style = next((m["motion_style"] for m in metas if "motion_style" in m), {})
    for key, value in style.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            getters[f"style_{key}"] = lambda m, key=key: m["motion_style"][key]
    out = {}
    for name, get in getters.items():
        found = [_safe(get)(m) for m in metas]
        if all(v is not None for v in found):
            out[name] = np.asarray(found, dtype=np.float64)
    return out


def _subjects(metas: list[dict]) -> dict[str, np.ndarray]:
    """Shape quantity -> (n_subjects,) values, one per subject (first clip's record)."""
    first: dict[str, dict] = {}
    for m in metas:
        if "body_shape" in m:
            first.setdefault(m["subject"], m["body_shape"])
    if not first:
        return {}
    shapes = [first[s] for s in sorted(first)]
    out = {}
    if all("height_m" in b for b in shapes):
        out["height_m"] = np.array([b["height_m"] for b in shapes], dtype=np.float64)
    names = set.intersection(*(set(b.get("shape", {})) for b in shapes))
    for name in sorted(names, key=list(shapes[0]["shape"]).index):
        out[name] = np.array([b["shape"][name] for b in shapes], dtype=np.float64)
    return out


def _safe(get):
    def wrapped(meta: dict):
        try:
            return get(meta)
        except (KeyError, IndexError, TypeError):
            return None

    return wrapped


def _action_label(action: str) -> str:
    """A library action's name, or a motion file's name (not its whole path)."""
    return Path(action).name if ("/" in action or "\\" in action) else action


def _sex(gender: float) -> str:
    """Anny's ``gender`` phenotype (0 male .. 1 female) as a label."""
    return "male" if float(gender) < 0.5 else "female"
