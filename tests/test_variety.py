"""The variety report counts what the clips' metadata says (on a tiny generated set)."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest

from biokin_nb.dataset import GenerateConfig, generate, read_index
from biokin_nb.dataset.variety import read_clip_meta, variety_report


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("variety")
    config = GenerateConfig(
        subjects=2, clips_per_subject=2, size=32, duration_s=0.05, fit_iterations=1, seed=5
    )
    generate(root, config, progress=False)
    return root


def test_report_counts_what_the_metadata_says(dataset):
    metas = [
        json.loads((dataset / "clips" / row["clip"] / "meta.json").read_text())
        for row in read_index(dataset)
    ]
    report = variety_report(dataset)
    assert (report.n_clips, report.n_subjects, report.missing) == (4, 2, [])
    assert report.counts["action"] == dict(Counter(m["action"] for m in metas))
    for part in ("upper", "lower"):
        assert report.counts[f"{part} garment"] == dict(Counter(m["garments"][part] for m in metas))
        assert report.counts[f"{part} texture"] == dict(Counter(m["textures"][part] for m in metas))
        palettes = Counter(str(m["scene"][part]["palette"]) for m in metas)
        assert report.counts[f"{part} palette"] == dict(palettes)
    heights = np.array([m["camera_heights_m"] for m in metas])
    np.testing.assert_array_equal(report.values["camera_height_view0_m"], heights[:, 0])
    np.testing.assert_array_equal(report.values["camera_height_view1_m"], heights[:, 1])
    assert np.all((heights > 0.95) & (heights < 1.25))  # 1.1 +/- 0.1 m and the perturbation
    azimuth = [m["scene"]["lighting"]["azimuth_deg"] for m in metas]
    np.testing.assert_array_equal(report.values["light_azimuth_deg"], azimuth)
    speeds = [m["motion_style"]["speed"] for m in metas]
    np.testing.assert_array_equal(report.values["style_speed"], speeds)
    shapes = {m["subject"]: m["body_shape"] for m in metas}
    expected_heights = [shapes[s]["height_m"] for s in sorted(shapes)]
    np.testing.assert_array_equal(report.subjects["height_m"], expected_heights)
    np.testing.assert_array_equal(
        report.subjects["age"], [shapes[s]["shape"]["age"] for s in sorted(shapes)]
    )
    genders = [m["body_shape"]["shape"]["gender"] for m in metas]  # Anny: 0 male .. 1 female
    assert report.counts["sex"] == dict(Counter("male" if g < 0.5 else "female" for g in genders))
    text = report.table()
    assert "4 clips, 2 subjects" in text and "camera_height_view1_m" in text
    figure = report.figure()
    assert len(figure.data) == len(report.counts) - 1 + len(report.values) + len(report.subjects)


def test_older_metadata_is_reported_as_missing(dataset, tmp_path):
    root = tmp_path / "old"
    shutil.copytree(dataset, root)
    for path in (root / "clips").glob("*/meta.json"):
        meta = json.loads(path.read_text())
        meta.pop("motion_style")
        path.write_text(json.dumps(meta))
    report = variety_report(root)
    assert report.missing == ["motion_style"] and "handedness" not in report.counts
    assert not any(k.startswith("style_") for k in report.values)
    assert "not recorded: motion_style" in report.table()


def test_missing_index_or_meta_is_named(dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="index.csv"):
        variety_report(tmp_path)
    root = tmp_path / "broken"
    shutil.copytree(dataset, root)
    first = read_index(root)[0]["clip"]
    (root / "clips" / first / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match=f"regenerate clip {first}"):
        read_clip_meta(root)


def test_cli_prints_the_table(dataset, tmp_path, capsys):
    from biokin_nb.cli import main

    assert main(["variety", str(dataset), "--html", str(tmp_path / "v.html")]) == 0
    assert "4 clips, 2 subjects" in capsys.readouterr().out
    assert (tmp_path / "v.html").stat().st_size > 0
    assert main(["variety", str(tmp_path / "none")]) == 2
