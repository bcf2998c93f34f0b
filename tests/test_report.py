"""Batch reports: params checking, clip loading, offline HTML, and a 3-clip run seen in Chromium.

The clips are written here from the generic model: a reference swing, the same swing with
every rotational coordinate 2 deg off (a known MAE), and the swing sampled at half the rate.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import plotly.graph_objects as go
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

from biokin_nb import cli, report
from biokin_nb.notebooks import parameters_of
from biokin_nb.osim import load_model
from biokin_nb.osim.coordinates import Motion, write_motion
from biokin_nb.viz.angles import PALETTE
from biokin_nb.viz.export import find_chromium

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "data" / "generic_model.osim"
OFFSET_DEG = 2.0
RATE_HZ, N_FRAMES = 50.0, 25
PLOTLY_BANNER = "plotly.js v"  # once per copy of plotly.js


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL)


def _swing(model, time: np.ndarray) -> Motion:
    """A leg and arm swing of the generic model at ``time`` (s)."""
    phase = np.sin(2 * np.pi * time)[:, None]
    q = np.tile(model.defaults, (len(time), 1))
    for name, amplitude_deg in [("hip_flexion_r", 30), ("knee_angle_r", 40), ("arm_flex_l", 25)]:
        q[:, model.coordinate_index(name)] += np.deg2rad(amplitude_deg) * phase[:, 0]
    q[:, model.coordinate_index("pelvis_tx")] += 0.8 * time
    return Motion(time, q, model.coordinate_names)


@pytest.fixture(scope="module")
def clip_dir(model, tmp_path_factory) -> Path:
    """reference.mot, offset.mot (+2 deg rotations) and half_rate.mot of one swing."""
    folder = tmp_path_factory.mktemp("clips")
    time = np.arange(N_FRAMES) / RATE_HZ
    ref = _swing(model, time)
    write_motion(model, ref, folder / "reference.mot")
    offset = ref.q + np.deg2rad(OFFSET_DEG) * model.rotational
    write_motion(model, Motion(time, offset, ref.coordinate_names), folder / "offset.mot")
    write_motion(model, _swing(model, time[::2]), folder / "half_rate.mot")
    return folder


def _clip(name: str, **extra) -> dict:
    return {
        "name": name,
        "model": str(MODEL),
        "motion": "reference.mot",
        "methods": {"offset": "offset.mot"},
        "joints": "hip_r, walker_knee_r",
        **extra,
    }


def _params(folder: Path, clips: list[dict], **top) -> Path:
    path = folder / "params.yaml"
    data = {"title": "Swings", "out": "reports", "defaults": {"save_figures": False}}
    path.write_text(yaml.safe_dump({**data, **top, "clips": clips}, sort_keys=False))
    return path


# --------------------------------------------------------------------------- parameters


def test_methods_and_joints_parse_from_strings():
    assert report.parse_methods("a=x.mot, b c = y.mot,") == {"a": "x.mot", "b c": "y.mot"}
    assert report.parse_joints(" hip_r,knee_angle_r ,") == ["hip_r", "knee_angle_r"]
    assert report.parse_joints(["hip_r"]) == ["hip_r"]
    with pytest.raises(report.ReportParamsError, match="'x.mot' is not name=path.mot"):
        report.parse_methods("x.mot")
    with pytest.raises(report.ReportParamsError, match="'a' is given twice"):
        report.parse_methods("a=x.mot,a=y.mot")


def test_plan_resolves_paths_defaults_and_parameters(clip_dir, tmp_path):
    clips = [_clip("one", max_frames=10), _clip("two", methods="o=offset.mot,h=half_rate.mot")]
    plan = report.load_plan(_params(tmp_path, clips, base=str(clip_dir)))
    assert plan.title == "Swings" and plan.out == tmp_path / "reports"
    one, two = plan.clips
    assert one.motion == clip_dir / "reference.mot" and one.max_frames == 10
    assert list(two.methods) == ["o", "h"] and two.methods["h"] == clip_dir / "half_rate.mot"
    params = one.parameters(tmp_path / "figures")
    assert params["JOINTS"] == "hip_r,walker_knee_r" and params["FIGURES"] is None  # defaults
    assert params["METHODS"] == f"offset={clip_dir / 'offset.mot'}"
    assert set(params) == set(parameters_of(report.REPORT_NOTEBOOK)), "the notebook's own"
    assert report.load_plan(plan.source, out=tmp_path / "elsewhere").out == tmp_path / "elsewhere"


def test_committed_example_params_are_valid(validation_dir):
    plan = report.load_plan(REPO / "data" / "reports" / "example.yaml")
    assert len(plan.clips) == 3 and plan.out == REPO / "build" / "reports"
    assert all(c.motion.is_file() and c.methods for c in plan.clips)


# --------------------------------------------------------------------------- bad input


def test_unknown_top_level_keys_name_the_valid_ones(clip_dir, tmp_path):
    path = _params(tmp_path, [_clip("one")], base=str(clip_dir), clip=[], output="x")
    with pytest.raises(report.ReportParamsError) as error:
        report.load_plan(path)
    message = str(error.value)
    assert "unknown key(s) 'clip' (did you mean 'clips'?), 'output'" in message
    assert "valid keys: title, out, base, defaults, clips" in message


def test_every_clip_problem_is_listed_in_one_error(clip_dir, tmp_path):
    clips = [
        _clip("typo", joint="hip_r"),
        _clip("missing", motion="nowhere.mot"),
        _clip("joints", joints="hip_r, knee_angel_r"),
        _clip("joints"),
        _clip("clash", methods={"reference": "offset.mot"}),
    ]
    with pytest.raises(report.ReportParamsError) as error:
        report.load_plan(_params(tmp_path, clips, base=str(clip_dir)))
    message = str(error.value)
    assert "5 problem(s)" in message
    assert "clip 'typo': unknown key(s) 'joint' (did you mean 'joints'?)" in message
    assert "valid keys: name, model, motion, methods, joints" in message
    assert f"clip 'missing': motion file not found: {clip_dir / 'nowhere.mot'}" in message
    assert "has no coordinate or joint 'knee_angel_r' (did you mean knee_angle_r" in message
    assert "clip name 'joints' is used twice" in message
    assert "clip 'clash': a method is named 'reference' like the reference" in message


def test_missing_params_file_and_bad_yaml(tmp_path):
    with pytest.raises(report.ReportParamsError, match="params file .*nope.yaml not found"):
        report.load_plan(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("clips: [")
    with pytest.raises(report.ReportParamsError, match="is not valid YAML"):
        report.load_plan(tmp_path / "bad.yaml")
    (tmp_path / "empty.yaml").write_text("title: x\n")
    with pytest.raises(report.ReportParamsError, match="'clips' must be a non-empty list"):
        report.load_plan(tmp_path / "empty.yaml")


def test_command_line_reports_bad_params_with_status_2(clip_dir, tmp_path, capsys):
    path = _params(tmp_path, [_clip("one", motion="nowhere.mot")], base=str(clip_dir))
    assert cli.main(["report", "--params", str(path), "--no-progress"]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists(), "nothing runs on bad input"


# --------------------------------------------------------------------------- clips


def test_load_clip_resamples_methods_onto_the_reference(clip_dir):
    methods = {"offset": clip_dir / "offset.mot", "half": clip_dir / "half_rate.mot"}
    clip = report.load_clip(MODEL, clip_dir / "reference.mot", methods, reference_name="ref")
    assert list(clip.sequences) == ["ref", "offset", "half"]
    span = clip.methods["half"].time[-1]
    assert clip.reference.time[-1] == pytest.approx(span) and len(clip.reference.time) == N_FRAMES
    for motion in clip.methods.values():
        assert motion.time == pytest.approx(clip.reference.time)
    summary = report.clip_summary(clip, ["hip_r", "walker_knee_r", "pelvis_tx"])
    assert summary.coordinates == ["hip_flexion_r", "hip_adduction_r", "hip_rotation_r"] + [
        "knee_angle_r"
    ]
    assert summary.mae_deg["offset"] == pytest.approx(OFFSET_DEG, abs=1e-5)
    assert 0 < summary.mae_deg["half"] < 1.0  # linear interpolation of a smooth swing
    short = report.load_clip(
        MODEL, clip_dir / "reference.mot", "o=" + str(methods["offset"]), max_frames=5
    )
    assert len(short.reference.time) == 5 and short.methods["o"].q.shape == (5, 39)


def test_load_clip_errors_name_the_file_and_the_time_spans(model, clip_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="method 'x' file not found: .*nope.mot"):
        report.load_clip(MODEL, clip_dir / "reference.mot", {"x": tmp_path / "nope.mot"})
    late = _swing(model, 10 + np.arange(5) / RATE_HZ)
    write_motion(model, late, tmp_path / "late.mot")
    with pytest.raises(ValueError, match="share no time span"):
        report.load_clip(MODEL, clip_dir / "reference.mot", {"late": tmp_path / "late.mot"})


# --------------------------------------------------------------------------- HTML


def _external_resources(page: str) -> list[str]:
    """Script and stylesheet tags of an HTML page that load a file (none may)."""
    return re.findall(r"<script[^>]*\ssrc=[^>]*>|<link[^>]*\shref=[^>]*>", page)


def _plotly_output(fig: go.Figure) -> nbformat.NotebookNode:
    return new_output("display_data", data={report.PLOTLY_MIME: fig.to_plotly_json()})


def test_notebook_to_html_embeds_plotly_once_and_loads_nothing(tmp_path):
    figures = [go.Figure(go.Scatter(y=[1, 3, 2])), go.Figure(go.Bar(y=[2, 1]))]
    summary = report.ClipSummary("m", 3, 0.1, ["a"], {"x": 1.0})
    cell = new_code_cell("hidden_source_xyz()", outputs=[_plotly_output(f) for f in figures])
    cell.outputs.append(new_output("display_data", data={report.SUMMARY_MIME: vars(summary)}))
    nb = new_notebook(
        cells=[
            new_markdown_cell("secret narrative", metadata={"tags": ["notebook-only"]}),
            new_markdown_cell("# Shown"),
            cell,
        ]
    )
    nbformat.write(nb, tmp_path / "run.ipynb")
    assert report.read_summary(tmp_path / "run.ipynb") == summary
    page = report.notebook_to_html(tmp_path / "run.ipynb", tmp_path / "run.html").read_text()
    assert page.count(PLOTLY_BANNER) == 1
    assert page.count('class="plotly-graph-div"') == 2
    assert _external_resources(page) == []
    assert "Shown" in page
    assert "secret narrative" not in page, "notebook-only cells are left out"
    assert "hidden_source_xyz" not in page, "code is hidden"
    assert report.SUMMARY_MIME not in page


# --------------------------------------------------------------------------- batch run


def _chromium_screenshot(html: Path, png: Path, profile: Path) -> np.ndarray:
    """(H, W, 3) uint8 screenshot of ``html`` in headless Chromium, 1200 x 900."""
    command = [
        find_chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        "--window-size=1200,900",
        html.as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    with Image.open(png) as image:
        return np.asarray(image.convert("RGB"))


def _has_colour(image: np.ndarray, hex_colour: str, tol: int = 12, min_pixels: int = 40) -> bool:
    rgb = np.array([int(hex_colour[k : k + 2], 16) for k in (1, 3, 5)])
    return int((np.abs(image.astype(int) - rgb).max(axis=-1) <= tol).sum()) >= min_pixels


@pytest.fixture(scope="module")
def batch(clip_dir, tmp_path_factory) -> tuple[Path, list[Path]]:
    """Three clips run through notebook 70 by the batch runner (tiny: seconds each)."""
    folder = tmp_path_factory.mktemp("batch")
    tiny = {"frame_step": 6}
    clips = [
        _clip("swing one", **tiny),
        _clip("swing_two", methods="offset=offset.mot,half rate=half_rate.mot", **tiny),
        _clip("swing_three", joints="hip_flexion_r,knee_angle_r,arm_flex_l", max_frames=12),
    ]
    path = _params(folder, clips, base=str(clip_dir))
    return folder / "reports", report.run_reports(path, progress=False)


@pytest.mark.slow
@pytest.mark.notebook
def test_batch_runner_writes_three_reports_and_an_index(batch):
    out, pages = batch
    assert [p.name for p in pages] == ["swing_one.html", "swing_two.html", "swing_three.html"]
    index = (out / "index.html").read_text()
    for page in pages:
        assert f'href="{page.name}"' in index
        html = page.read_text()
        assert html.count(PLOTLY_BANNER) == 1, "plotly.js embedded exactly once"
        assert html.count('class="plotly-graph-div"') == 3  # angles, errors, skeleton
        assert _external_resources(html) == [], "nothing loaded from the network"
        assert "notebook-only" not in html and report.SUMMARY_MIME not in html
        assert (out / page.stem / "70_report.ipynb").is_file()
    assert index.count("offset: 2.00") == 3 and "half rate: " in index
    assert index.count("<tr><td>") == 3 and "failed" not in index.replace(".failed", "")
    assert "<td>25</td>" in index and "<td>12</td>" in index  # frames


@pytest.mark.slow
@pytest.mark.notebook
def test_reports_show_their_plots_in_headless_chromium(batch, tmp_path):
    if find_chromium() is None:
        pytest.skip("no Chromium found: install the Debian package `chromium` to check reports")
    _, pages = batch
    for page in pages:
        image = _chromium_screenshot(page, tmp_path / f"{page.stem}.png", tmp_path / "profile")
        ink = (image.astype(int) < 235).any(axis=-1).mean()
        assert ink > 0.05, f"{page.name} looks blank ({ink:.1%} non-white)"
        assert _has_colour(image, PALETTE[1]), f"no 'offset' curve in {page.name}"
        # the reference (and 'half rate', on top of it): at least one shows
        assert _has_colour(image, PALETTE[0]) or _has_colour(image, PALETTE[2])
        assert _has_colour(image, "#e0f1e0", tol=4, min_pixels=20000), "no ROM bands"


def test_failed_clips_are_reported_in_the_index_and_raised(clip_dir, tmp_path, monkeypatch):
    from papermill.exceptions import PapermillExecutionError

    from biokin_nb import notebooks

    def fail(path, out_dir, parameters, kernel):
        error = new_output("error", ename="ValueError", evalue="boom", traceback=[])
        Path(out_dir).mkdir(parents=True)
        nbformat.write(
            new_notebook(cells=[new_code_cell("boom()", outputs=[error])]), out_dir / path.name
        )
        raise PapermillExecutionError(0, 1, "boom()", "ValueError", "boom", [])

    monkeypatch.setattr(notebooks, "run_notebook", fail)
    path = _params(tmp_path, [_clip("bad")], base=str(clip_dir))
    with pytest.raises(report.ReportRunError, match="(?s)1 of 1 report.*bad: ValueError: boom"):
        report.run_reports(path, progress=False)
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "failed: ValueError: boom" in index and (tmp_path / "reports" / "bad.html").is_file()
