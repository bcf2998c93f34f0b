"""Batch reports: notebook 70 over many clips, one self-contained HTML page per clip, an index.

A params YAML file lists the clips (``biokin report --params PARAMS.yaml``, ``make reports``)::

    title: Walking trials                 # index page title (optional)
    out: ../../build/reports              # output folder (optional; --out wins)
    base: ../../../shared/validation      # where relative clip paths start (default: here)
    defaults:                             # keys every clip gets unless it sets them
      joints: hip_r, knee_r, ankle_r
    clips:
      - name: gait2354_walk               # file names of its report (default: motion stem)
        model: gait2354_walk/subject01_simbody.osim
        motion: gait2354_walk/subject01_walk1_ik.mot      # the reference
        methods:                          # or "name=path.mot,name2=path2.mot"
          OpenSim 4.6: gait2354_walk/generated_opensim4.6/subject01_walk1_ik_os46.mot
        title: Gait2354, walk 1
        # optional: reference (legend name), max_frames, frame_step, save_figures (PNGs)

``out`` and ``base`` are relative to the params file; clip paths are relative to ``base``.
Every clip is checked before anything runs (files exist, joints are in the model, no unknown
keys); then notebook 70 runs once per clip under papermill, and each executed notebook
becomes ``<out>/<name>.html``: code hidden, plotly.js embedded once, no network needed.
``<out>/index.html`` links them with a summary table. Executed notebooks and figures stay in
``<out>/<name>/``.

The notebook itself uses :func:`load_clip`, :func:`clip_summary` and
:func:`publish_summary`; the runner reads the summary back from the executed notebook.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import html
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from biokin_nb._files import atomic_write
from biokin_nb.notebooks import DEFAULT_KERNEL, NOTEBOOKS_DIR

if TYPE_CHECKING:  # the OpenSim layer imports torch: only the functions that need it load it
    from biokin_nb.osim.coordinates import Motion
    from biokin_nb.osim.model import KinematicModel

REPORT_NOTEBOOK = NOTEBOOKS_DIR / "70_report.ipynb"
DEFAULT_OUT = Path("build/reports")  # relative to the working directory
SUMMARY_MIME = "application/vnd.biokin.report-summary+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
NOTEBOOK_ONLY_TAG = "notebook-only"  # cells left out of the HTML reports
TOP_KEYS = ("title", "out", "base", "defaults", "clips")
CLIP_KEYS = (
    "name",
    "model",
    "motion",
    "methods",
    "joints",
    "title",
    "reference",
    "max_frames",
    "frame_step",
    "save_figures",
)
REQUIRED_CLIP_KEYS = ("model", "motion", "methods", "joints")
# The report template: JupyterLab's, without the scripts it loads from the network.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""

logger = logging.getLogger(__name__)

__all__ = [
    "ClipData",
    "ClipResult",
    "ClipSpec",
    "ClipSummary",
    "ReportParamsError",
    "ReportPlan",
    "ReportRunError",
    "clip_summary",
    "html_figure",
    "load_clip",
    "load_plan",
    "notebook_to_html",
    "parse_joints",
    "parse_methods",
    "publish_summary",
    "read_summary",
    "rotational",
    "run_reports",
    "use_report_renderer",
    "write_index",
]


class ReportParamsError(ValueError):
    """A params file or clip parameters are wrong; the message lists every problem."""


class ReportRunError(RuntimeError):
    """Some clips' notebooks failed; their reports show the traceback."""


# --------------------------------------------------------------------------- parameters


def parse_methods(text: str) -> dict[str, str]:
    """``"name=path.mot,name2=path2.mot"`` -> ``{name: path}`` (order kept).

    Raises:
        ReportParamsError: an item without ``=``, an empty name or path, a repeated name.
    """
    methods: dict[str, str] = {}
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        name, sep, path = (s.strip() for s in item.partition("="))
        if not sep or not name or not path:
            raise ReportParamsError(
                f"method {item!r} is not name=path.mot; write METHODS as "
                "'name=path.mot,name2=path2.mot'"
            )
        if name in methods:
            raise ReportParamsError(f"method name {name!r} is given twice; names must differ")
        methods[name] = path
    return methods


def parse_joints(text: str | Sequence[str]) -> list[str]:
    """``"hip_r, knee_angle_r"`` or a list -> names (coordinates or joints), blanks dropped."""
    items = str(text).split(",") if isinstance(text, str) else [str(t) for t in text]
    return [s.strip() for s in items if s.strip()]


@dataclass
class ClipSpec:
    """One clip of a params file, paths resolved (absolute).

    Attributes:
        methods: ``{method name: .mot path}`` compared against ``motion``, the reference.
        joints: coordinate or joint names to plot.
        max_frames: keep only the first frames (None: all).
        frame_step: stride of the skeleton animation (>= 1).
        save_figures: also write the figures as PNG (or HTML) into ``<out>/<name>/figures``.
    """

    name: str
    model: Path
    motion: Path
    methods: dict[str, Path]
    joints: list[str]
    title: str
    reference: str = "reference"
    max_frames: int | None = None
    frame_step: int = 1
    save_figures: bool = True

    def parameters(self, figures: Path) -> dict[str, object]:
        """Notebook 70's parameters (primitive values) for this clip."""
        return {
            "MODEL": str(self.model),
            "MOTION": str(self.motion),
            "METHODS": ",".join(f"{k}={v}" for k, v in self.methods.items()),
            "JOINTS": ",".join(self.joints),
            "TITLE": self.title,
            "REFERENCE": self.reference,
            "MAX_FRAMES": self.max_frames,
            "FRAME_STEP": self.frame_step,
            "FIGURES": str(figures) if self.save_figures else None,
        }


@dataclass
class ReportPlan:
    """A checked params file: the clips and where their reports go."""

    title: str
    out: Path
    clips: list[ClipSpec]
    source: Path | None = None


def _unknown_keys(given: Mapping[str, Any], valid: Sequence[str], where: str) -> list[str]:
    unknown = [k for k in given if k not in valid]
    if not unknown:
        return []
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), valid, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return [f"{where}: unknown key(s) {', '.join(hints)}; valid keys: {', '.join(valid)}"]


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ReportParamsError(f"params file {path} not found; pass an existing YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ReportParamsError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ReportParamsError(f"{path}: expected a mapping with keys {', '.join(TOP_KEYS)}")
    problems = _unknown_keys(data, TOP_KEYS, str(path))
    if not isinstance(data.get("clips"), list) or not data["clips"]:
        problems.append(f"{path}: 'clips' must be a non-empty list of clip mappings")
    if not isinstance(data.get("defaults", {}), dict):
        problems.append(f"{path}: 'defaults' must be a mapping of clip keys")
    if problems:
        raise ReportParamsError("\n".join(problems))
    return data


def _methods_of(value: Any) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return parse_methods(value)


def _path_problems(spec: ClipSpec, where: str, base: Path) -> list[str]:
    files = {"model": spec.model, "motion": spec.motion}
    files |= {f"method {k!r}": v for k, v in spec.methods.items()}
    return [
        f"{where}: {what} file not found: {path} (relative paths start at {base})"
        for what, path in files.items()
        if not path.is_file()
    ]


def _clip_spec(raw: Mapping[str, Any], base: Path) -> ClipSpec:
    """A ClipSpec of one clip mapping (keys already checked); paths joined to ``base``."""
    methods = {k: base / v for k, v in _methods_of(raw["methods"]).items()}
    motion = base / str(raw["motion"])
    max_frames = raw.get("max_frames")
    return ClipSpec(
        name=str(raw.get("name") or motion.stem),
        model=base / str(raw["model"]),
        motion=motion,
        methods=methods,
        joints=parse_joints(raw["joints"]),
        title=str(raw.get("title") or raw.get("name") or motion.stem),
        reference=str(raw.get("reference", "reference")),
        max_frames=None if max_frames is None else int(max_frames),
        frame_step=int(raw.get("frame_step", 1)),
        save_figures=_flag(raw.get("save_figures", True), "save_figures"),
    )


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ReportParamsError(f"{key} must be true or false, got {value!r}")
    return value


def _clip_problems(
    raw: Any, defaults: Mapping[str, Any], where: str, base: Path
) -> tuple[ClipSpec | None, list[str]]:
    if not isinstance(raw, Mapping):
        return None, [f"{where}: expected a mapping of {', '.join(CLIP_KEYS)}"]
    merged = {**defaults, **raw}
    problems = _unknown_keys(raw, CLIP_KEYS, where)
    missing = [k for k in REQUIRED_CLIP_KEYS if k not in merged]
    if missing:
        problems.append(f"{where}: missing key(s) {', '.join(missing)}")
    if problems:
        return None, problems
    try:
        spec = _clip_spec(merged, base)
    except (ReportParamsError, TypeError, ValueError) as error:
        return None, [f"{where}: {error}"]
    if spec.frame_step < 1 or (spec.max_frames is not None and spec.max_frames < 2):
        problems.append(f"{where}: frame_step must be >= 1 and max_frames >= 2 (or absent)")
    if not spec.methods:
        problems.append(f"{where}: no methods given; list at least one name=path.mot")
    if spec.reference in spec.methods:
        problems.append(f"{where}: a method is named {spec.reference!r} like the reference")
    return spec, problems + _path_problems(spec, where, base)


def _read_model(path: Path) -> tuple[KinematicModel | None, str | None]:
    """(model, None), or (None, why it cannot be read)."""
    from biokin_nb.osim import load_model

    try:
        with _quiet_opensim():
            return load_model(path), None
    except Exception as error:  # opensim's and the reader's errors vary; reported, not hidden
        return None, f"cannot read model {path}: {type(error).__name__}: {error}"


def _joint_problems(clips: Sequence[ClipSpec]) -> list[str]:
    """Unreadable models and unknown joint / coordinate names (with close matches) per clip."""
    from biokin_nb.viz.angles import resolve_coordinates

    models = {path: _read_model(path) for path in dict.fromkeys(c.model for c in clips)}
    problems = []
    for spec in clips:
        model, why = models[spec.model]
        if model is None:
            problems.append(f"clip {spec.name!r}: {why}")
            continue
        try:
            resolve_coordinates(model, spec.joints)
        except KeyError as error:
            problems.append(f"clip {spec.name!r}: {error.args[0]}")
    return problems


def load_plan(params_yaml: str | Path, out: str | Path | None = None) -> ReportPlan:
    """Read and check a params file (see the module docstring) without running anything.

    Args:
        out: output folder overriding the file's ``out`` (relative to the working directory).

    Raises:
        ReportParamsError: one error listing every problem: unknown keys (with the valid
            ones), missing files, names the model lacks (with close matches), repeated names.
    """
    path = Path(params_yaml).resolve()
    data = _read_yaml(path)
    base = (path.parent / str(data.get("base", "."))).resolve()
    defaults = data.get("defaults") or {}
    problems = _unknown_keys(defaults, CLIP_KEYS, f"{path}: defaults")
    clips = []
    for k, raw in enumerate(data["clips"]):
        label = raw.get("name", k + 1) if isinstance(raw, Mapping) else k + 1
        spec, found = _clip_problems(raw, defaults, f"clip {label!r}", base)
        problems += found
        if spec is not None and not found:
            clips.append(spec)
    names = [_slug(c.name) for c in clips]  # the report's file name
    problems += [f"clip name {n!r} is used twice; names must differ" for n in _repeats(names)]
    problems += _joint_problems(clips)
    if problems:
        raise ReportParamsError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    target = Path(out) if out is not None else path.parent / str(data.get("out", DEFAULT_OUT))
    return ReportPlan(str(data.get("title", "Reports")), target.resolve(), clips, path)


def _repeats(names: Sequence[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


# --------------------------------------------------------------------------- in the notebook


@dataclass
class ClipData:
    """A clip's model and its sequences on one time base.

    Attributes:
        reference: the reference Motion (T frames, time in s).
        methods: ``{name: Motion}`` resampled to the reference's time.
    """

    model: KinematicModel
    reference: Motion
    methods: dict[str, Motion]
    reference_name: str = "reference"

    @property
    def sequences(self) -> dict[str, Motion]:
        """``{reference name: reference, **methods}``, for plots."""
        return {self.reference_name: self.reference, **self.methods}


@contextlib.contextmanager
def _quiet_opensim() -> Iterator[None]:
    """OpenSim logs errors only meanwhile (not its missing-geometry warnings, which are
    harmless here and would fill the report)."""
    from biokin_nb.osim._opensim import opensim

    logger_ = opensim().Logger
    logger_.setLevelString("error")
    try:
        yield
    finally:
        logger_.setLevelString("warn")


def _resample(motion: Motion, time: np.ndarray) -> Motion:
    """``motion`` at ``time`` (s) by linear interpolation per coordinate (no wrapping)."""
    from biokin_nb.osim.coordinates import Motion

    if len(motion.time) == len(time) and np.allclose(motion.time, time, atol=1e-9):
        return motion
    q = np.stack([np.interp(time, motion.time, col) for col in motion.q.T], axis=1)
    return Motion(time.copy(), q, list(motion.coordinate_names))


def _common_window(motions: Sequence[Motion]) -> tuple[float, float]:
    start = max(float(m.time[0]) for m in motions)
    end = min(float(m.time[-1]) for m in motions)
    if end < start:
        raise ValueError(
            "the reference and the methods share no time span "
            f"({', '.join(f'{m.time[0]:.3f}-{m.time[-1]:.3f} s' for m in motions)})"
        )
    return start, end


def load_clip(
    model_path: str | Path,
    motion: str | Path,
    methods: Mapping[str, str | Path] | str,
    *,
    max_frames: int | None = None,
    reference_name: str = "reference",
) -> ClipData:
    """Read a clip: its model, the reference ``.mot`` and each method's ``.mot``.

    Methods are resampled (linearly) onto the reference's frames within the time span all
    of them cover; then the first ``max_frames`` frames are kept (None: all).

    Raises:
        FileNotFoundError: a file is missing (named).
        ValueError: the sequences share no time span, or a method has the reference's name.
    """
    from biokin_nb.osim import load_model
    from biokin_nb.osim.coordinates import Motion, read_motion

    methods = parse_methods(methods) if isinstance(methods, str) else dict(methods)
    if reference_name in methods:
        raise ValueError(
            f"a method is named {reference_name!r} like the reference; rename one of them"
        )
    paths = {"model": model_path, "reference motion": motion}
    for what, path in {**paths, **{f"method {k!r}": v for k, v in methods.items()}}.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{what} file not found: {Path(path).resolve()}")
    with _quiet_opensim():
        model = load_model(model_path)
    reference = read_motion(model, motion, extra="ignore")
    others = {k: read_motion(model, v, extra="ignore") for k, v in methods.items()}
    start, end = _common_window([reference, *others.values()])
    keep = (reference.time >= start - 1e-9) & (reference.time <= end + 1e-9)
    keep &= np.cumsum(keep) <= (max_frames or len(keep))
    reference = Motion(reference.time[keep], reference.q[keep], reference.coordinate_names)
    resampled = {k: _resample(m, reference.time) for k, m in others.items()}
    return ClipData(model, reference, resampled, reference_name)


@dataclass
class ClipSummary:
    """What the index page shows of a clip: size and mean error (deg) per method."""

    model: str
    frames: int
    duration_s: float
    coordinates: list[str]
    mae_deg: dict[str, float] = field(default_factory=dict)


def rotational(model: KinematicModel, names: Sequence[str]) -> list[str]:
    """The rotational coordinates among ``names`` (coordinates or joints), model-checked."""
    from biokin_nb.viz.angles import resolve_coordinates

    coords = resolve_coordinates(model, names)
    return [c for c in coords if model.rotational[model.coordinate_index(c)]]


def clip_summary(clip: ClipData, coordinates: Sequence[str]) -> ClipSummary:
    """Frames, duration and each method's MAE (deg) over the rotational ``coordinates``."""
    from biokin_nb.viz.angles import error_table

    names = rotational(clip.model, coordinates)
    table = error_table(clip.model, clip.reference, clip.methods, names) if names else None
    mae = {} if table is None else {m: float(table[m].mean()) for m in table.columns}
    time = clip.reference.time
    return ClipSummary(clip.model.name, len(time), float(time[-1] - time[0]), names, mae)


def use_report_renderer() -> None:
    """Plotly figures display as JSON (``plotly_mimetype``): live in JupyterLab and VS Code,
    and turned into offline HTML with plotly.js embedded once by :func:`notebook_to_html`.

    (Under papermill plotly would otherwise also inline plotly.js in the notebook and load
    MathJax from a CDN for every figure.)
    """
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype"


def publish_summary(summary: ClipSummary) -> None:
    """Display the summary as a JSON output the runner reads back (hidden in the report)."""
    from IPython.display import display

    display({SUMMARY_MIME: asdict(summary)}, raw=True)


def read_summary(executed: str | Path) -> ClipSummary | None:
    """The :class:`ClipSummary` published in an executed notebook (None if there is none)."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if SUMMARY_MIME in data:
                value = data[SUMMARY_MIME]
                return ClipSummary(**(json.loads(value) if isinstance(value, str) else value))
    return None


# --------------------------------------------------------------------------- HTML


def _plotly_outputs_to_html(nb: Any) -> int:
    """Turn plotly JSON outputs into HTML divs, plotly.js inline in the first; drop summaries.

    Returns the number of figures converted.
    """
    count = 0
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if SUMMARY_MIME in data:
                continue
            if PLOTLY_MIME in data:
                figure = html_figure(data[PLOTLY_MIME], include_plotlyjs=count == 0)
                output["data"] = {"text/html": figure}
                count += 1
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept
    return count


def html_figure(figure: Any, *, include_plotlyjs: bool) -> str:
    """A plotly figure (dict or Figure) as an HTML div; plotly.js inline when asked."""
    import plotly.io as pio

    return pio.to_html(
        figure,
        include_plotlyjs=include_plotlyjs,
        include_mathjax=False,
        full_html=False,
        default_width="100%",
        validate=False,
    )


def notebook_to_html(executed: str | Path, path: str | Path, title: str | None = None) -> Path:
    """One self-contained HTML page of an executed notebook: code hidden, works offline.

    Plotly figures (JSON outputs) get plotly.js embedded once; the page loads nothing from
    the network (no require.js, MathJax or widget scripts). Cells tagged ``notebook-only``
    are left out. Written atomically.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if NOTEBOOK_ONLY_TAG not in c.metadata.get("tags", [])]
    _plotly_outputs_to_html(nb)
    if title:
        nb.metadata["title"] = title
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"biokin_report.html.j2": _TEMPLATE})],
        template_file="biokin_report.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    path = Path(path)
    with atomic_write(path, "w") as file:
        file.write(body)
    return path


# --------------------------------------------------------------------------- running


@dataclass
class ClipResult:
    """What happened to one clip: its report, summary, or the error it stopped at."""

    spec: ClipSpec
    html: Path
    summary: ClipSummary | None = None
    error: str | None = None


def _slug(name: str) -> str:
    """A file-name-safe version of a clip name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "clip"


def _run_clip(spec: ClipSpec, out: Path, kernel: str) -> ClipResult:
    """Run notebook 70 for one clip and convert it; a failing notebook is reported, not raised."""
    from papermill.exceptions import PapermillExecutionError

    from biokin_nb.notebooks import run_notebook

    folder = out / _slug(spec.name)
    executed = folder / REPORT_NOTEBOOK.name
    result = ClipResult(spec, out / f"{_slug(spec.name)}.html")
    try:
        run_notebook(REPORT_NOTEBOOK, folder, spec.parameters(folder / "figures"), kernel)
    except PapermillExecutionError as error:
        result.error = f"{error.ename}: {error.evalue}"
    if executed.is_file():
        notebook_to_html(executed, result.html, title=spec.title)
        result.summary = read_summary(executed) if result.error is None else None
    return result


def run_reports(
    params_yaml: str | Path,
    *,
    out: str | Path | None = None,
    kernel: str = DEFAULT_KERNEL,
    progress: bool = True,
) -> list[Path]:
    """Run notebook 70 for every clip of ``params_yaml``; write the reports and an index.

    Args:
        out: output folder (default: the file's ``out``, else ``build/reports``).
        kernel: Jupyter kernel for papermill.
        progress: show a progress bar (one step per clip).

    Returns:
        The report pages, one per clip, in the file's order (``index.html`` is beside them).

    Raises:
        ReportParamsError: the params file is wrong (nothing is run).
        ReportRunError: some notebooks failed (the others' reports and the index are written).
    """
    from tqdm.auto import tqdm

    plan = load_plan(params_yaml, out)
    plan.out.mkdir(parents=True, exist_ok=True)
    results = []
    bar = tqdm(plan.clips, desc="reports", unit="clip", disable=not progress)
    for spec in bar:
        bar.set_postfix_str(spec.name)
        results.append(_run_clip(spec, plan.out, kernel))
    index = write_index(plan, results)
    failed = [r for r in results if r.error]
    if failed:
        lines = [f"{r.spec.name}: {r.error} (see {r.html})" for r in failed]
        raise ReportRunError(
            f"{len(failed)} of {len(results)} report(s) failed; index {index}:\n  "
            + "\n  ".join(lines)
        )
    return [r.html for r in results]


# --------------------------------------------------------------------------- index


_INDEX_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.7em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.failed { color: #b00020; }
"""


def _index_row(result: ClipResult, out: Path) -> str:
    spec, s = result.spec, result.summary
    link = f'<a href="{html.escape(result.html.relative_to(out).as_posix())}">'
    link += f"{html.escape(spec.name)}</a>"
    if result.error:
        status = f'<span class="failed">failed: {html.escape(result.error)}</span>'
    else:
        status = "ok"
    mae = "<br>".join(f"{html.escape(m)}: {v:.2f}" for m, v in (s.mae_deg if s else {}).items())
    cells = [
        link,
        html.escape(spec.title),
        html.escape(s.model if s else spec.model.name),
        str(s.frames) if s else "",
        f"{s.duration_s:.2f}" if s else "",
        mae,
        status,
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def write_index(plan: ReportPlan, results: Sequence[ClipResult]) -> Path:
    """``<out>/index.html``: one row per clip linking its report, with its summary."""
    header = [
        "clip",
        "title",
        "model",
        "frames",
        "duration (s)",
        "mean MAE vs reference (deg)",
        "status",
    ]
    rows = "\n".join(_index_row(r, plan.out) for r in results)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(plan.title)}</title>
<style>{_INDEX_STYLE}</style></head>
<body><h1>{html.escape(plan.title)}</h1>
<p>{len(results)} clip(s) from {html.escape(str(plan.source or ""))}. Errors are mean absolute
joint-angle errors over each clip's plotted rotational coordinates.</p>
<table><thead><tr>{"".join(f"<th>{h}</th>" for h in header)}</tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
"""
    path = plan.out / "index.html"
    with atomic_write(path, "w") as file:
        file.write(page)
    return path


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report runner's options (``biokin report``)."""
    parser.add_argument(
        "--params",
        type=Path,
        required=True,
        help="YAML file listing the clips, e.g. data/reports/example.yaml",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: the file's 'out')")
    parser.add_argument(
        "--kernel", default=DEFAULT_KERNEL, help=f"Jupyter kernel name (default: {DEFAULT_KERNEL})"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the reports as the parsed command line says; 0 ok, 1 a clip failed, 2 bad input."""
    logging.getLogger("papermill").setLevel(logging.WARNING)
    try:
        pages = run_reports(
            args.params, out=args.out, kernel=args.kernel, progress=not args.no_progress
        )
    except ReportParamsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ReportRunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(pages)} report(s) and {pages[0].parent / 'index.html'}")
    return 0
