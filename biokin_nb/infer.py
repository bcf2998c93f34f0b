"""Inference: two-view video + ``cameras.json`` -> OpenSim kinematics.

A clip folder holds ``view0.mp4`` (frontal), ``view1.mp4`` (sagittal) and ``cameras.json``
(:func:`biokin_nb.render.read_cameras`); ``meta.json`` with ``fps`` is optional (default
60 Hz). For each clip :func:`infer_clip` writes into its output folder:

    coordinates.mot   joint angles (OpenSim .mot, degrees); pelvis translations are zero
                      (the network predicts pelvis-relative kinematics)
    scaled.osim       the generic model scaled by the predicted segment scales
    keypoints.npy     (T, 44, 3) float64 joint centres then mass centres (m), pelvis-relative

Person masks come from the network's own mask head and refiner (no external segmenter), in
two passes per chunk of frames: the full views (letterboxed) locate the person, then the
network sees square person crops ``CROP_SCALE`` times the located extent, as in training
(:mod:`biokin_nb.net.crops`, :func:`biokin_nb.train.net_input`). Bad input raises
:class:`InputError` naming the problem and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from biokin_nb.net import FrameEncoding, KinematicsNet, NetConfig, auto_device, load_checkpoint
from biokin_nb.net.checkpoint import network_from_checkpoint
from biokin_nb.net.crops import boxes_from_crop_masks
from biokin_nb.osim import KinematicModel, load_model, root_relative_keypoints
from biokin_nb.osim.coordinates import Motion, write_motion
from biokin_nb.osim.scaling import write_scaled_osim
from biokin_nb.render.cameras import Camera, read_cameras
from biokin_nb.render.video import FPS, iter_video
from biokin_nb.train import NetInput, net_input

VIEW_FILES = ("view0.mp4", "view1.mp4")
CROP_SCALE = 1.3  # person crop side / person extent (training draws 1.15 to 1.5)
CAMERAS = "cameras.json"


class InputError(ValueError):
    """A clip folder that cannot be used for inference."""


@dataclass
class TwoViewClip:
    """Decoded input of one clip.

    Attributes:
        folder: the clip folder.
        frames: (V, T, H, W, 3) uint8 RGB frames of both views.
        cameras: the V cameras of the full images.
        fps: frame rate (Hz).
    """

    folder: Path
    frames: np.ndarray
    cameras: list[Camera]
    fps: float


@dataclass
class Prediction:
    """The network's prediction for one clip of T frames (C coordinates, B bodies).

    Attributes:
        coordinates: (T, C) rad / m, model order, pelvis translations zero.
        scales: (B, 3) segment scale factors.
        keypoints: (T, 2B, 3) m, joint centres then mass centres, pelvis-relative.
        masks: (V, T, H, H) bool predicted person masks of the crops.
        fps: frame rate (Hz).
        boxes: (V, T, 4) the crop boxes in the full images (x0, y0, x1, y1; pixel edges).
    """

    coordinates: np.ndarray
    scales: np.ndarray
    keypoints: np.ndarray
    masks: np.ndarray
    fps: float
    boxes: np.ndarray


@dataclass
class ChunkEncoding:
    """The frame encoder's output for one chunk of t frames of one clip (S = 1).

    Attributes:
        encoding: features, hourglass maps, points and masks of the person crops.
        boxes: (V, 4) float64 crop box of each view in its full image.
    """

    encoding: FrameEncoding
    boxes: torch.Tensor

    def masks(self) -> torch.Tensor:
        """(V, t, H, H) bool predicted masks of the crops."""
        return self.encoding.masks[0].transpose(0, 1).cpu()

    def frame_boxes(self) -> torch.Tensor:
        """(V, t, 4) the chunk's boxes repeated per frame."""
        return self.boxes[:, None].expand(-1, self.encoding.masks.shape[1], 4)


@dataclass
class InferenceFiles:
    """The files written for one clip."""

    motion: Path
    osim: Path
    keypoints: Path


# ---- reading ---------------------------------------------------------------------------------


def read_two_view(folder: str | Path) -> TwoViewClip:
    """Decode a clip folder's two videos and read its cameras.

    Raises:
        InputError: a missing ``cameras.json`` or video, an empty video, frame counts that
            differ between the views, or not two cameras.
    """
    folder = Path(folder)
    if not (folder / CAMERAS).is_file():
        raise InputError(
            f"{folder} has no {CAMERAS}; write the two cameras (OpenCV convention) with "
            "biokin_nb.render.write_cameras"
        )
    cameras = read_cameras(folder / CAMERAS)
    if len(cameras) != len(VIEW_FILES):
        raise InputError(f"{folder / CAMERAS} has {len(cameras)} cameras; two are needed")
    views = [_read_view(folder / name, cam) for name, cam in zip(VIEW_FILES, cameras, strict=True)]
    if len(views[0]) != len(views[1]):
        raise InputError(
            f"{folder}: {VIEW_FILES[0]} has {len(views[0])} frames but {VIEW_FILES[1]} has "
            f"{len(views[1])}; trim both videos to the same synchronized frames"
        )
    return TwoViewClip(folder, np.stack(views), cameras, _fps(folder))


def _read_view(path: Path, camera: Camera) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"no video {path}; a clip needs {' and '.join(VIEW_FILES)}")
    try:
        frames = list(iter_video(path, (camera.width, camera.height)))
    except (OSError, RuntimeError, StopIteration) as error:
        raise InputError(f"video {path} is empty or unreadable ({error}); re-export it") from None
    if not frames:
        raise InputError(f"video {path} is empty (no frames); re-export it")
    return np.stack(frames)


def _fps(folder: Path) -> float:
    meta = folder / "meta.json"
    if meta.is_file():
        return float(json.loads(meta.read_text(encoding="utf-8")).get("fps", FPS))
    return FPS


def clip_folders(root: str | Path) -> list[Path]:
    """The clip folders under ``root`` (``root`` itself if it is one), sorted.

    Raises:
        InputError: no folder with a ``view0.mp4`` under ``root``.
    """
    root = Path(root)
    if (root / VIEW_FILES[0]).is_file():
        return [root]
    found = sorted(p.parent for p in root.rglob(VIEW_FILES[0]) if ".tmp-" not in str(p))
    if not found:
        raise InputError(f"no clip folder (with {VIEW_FILES[0]}) under {root}")
    return found


# ---- network ---------------------------------------------------------------------------------


def load_network(
    checkpoint: str | Path,
    model: KinematicModel | None = None,
    config: NetConfig | None = None,
    device: str | torch.device | None = None,
) -> KinematicsNet:
    """The network of ``checkpoint`` in eval mode. With ``config`` the checkpoint must have
    been trained with it (else :class:`~biokin_nb.net.CheckpointMismatchError` lists the
    differences); without, the checkpoint's own config is used."""
    model = model or generic_model()
    device = auto_device(device)
    if config is None:
        net = network_from_checkpoint(checkpoint, model, device)
    else:
        net = KinematicsNet(config, model).to(device)
        load_checkpoint(net, checkpoint)
    return net.eval()


def generic_model() -> KinematicModel:
    from biokin_nb.body.registration import GENERIC_MODEL

    return load_model(GENERIC_MODEL)


@torch.no_grad()
def encode_chunks(
    net: KinematicsNet, clip: TwoViewClip, chunk: int = 16
) -> Iterator[ChunkEncoding]:
    """The frame encoder over ``clip`` in chunks of ``chunk`` frames, in order: per chunk the
    person is located in the full views (:func:`locate_person`), then encoded in person
    crops with points in the predicted masks."""
    device = next(net.parameters()).device
    size = net.config.image_size
    cams = [torch.tensor(np.stack([getattr(c, k) for c in clip.cameras]))[None] for k in "KRt"]
    for start in range(0, clip.frames.shape[1], chunk):
        video = torch.from_numpy(clip.frames[:, start : start + chunk]).permute(0, 1, 4, 2, 3)
        video = video[None] / 255.0
        boxes = locate_person(net, net_input(video, *cams, size).to(device))
        inputs = net_input(video, *cams, size, boxes=boxes[None]).to(device)
        encoding = net.encode(inputs.images, inputs.K, inputs.R, inputs.t)
        yield ChunkEncoding(encoding, boxes)


@torch.no_grad()
def locate_person(net: KinematicsNet, full: NetInput) -> torch.Tensor:
    """(V, 4) person boxes from the predicted masks of one clip chunk's full-view crops
    ``full`` (S = 1): ``CROP_SCALE`` times the masks' extent over the chunk; a view with no
    mask pixel keeps its full box."""
    maps = net.views(full.images)
    masks = net.mask_logits(full.images, maps)[0].transpose(0, 1) > 0  # (V, t, H, H)
    return boxes_from_crop_masks(masks.cpu(), full.boxes[0].cpu(), CROP_SCALE)


@torch.no_grad()
def predict(
    net: KinematicsNet,
    clip: TwoViewClip,
    temporal: bool = True,
    chunk: int = 16,
    chunks: list[ChunkEncoding] | None = None,
) -> Prediction:
    """Predict a clip: the frame encoder in chunks of ``chunk`` frames
    (:func:`encode_chunks`; or the given ``chunks`` of this clip, to share one encoding
    between methods), then the temporal module over the whole clip unless ``temporal`` is
    False."""
    chunks = chunks if chunks is not None else list(encode_chunks(net, clip, chunk))
    features = torch.cat([c.encoding.features for c in chunks], dim=1)
    if temporal:
        features = net.temporal_features(features)
    out = net.heads(features, None)
    q, scales = out.coordinates[0], out.scales[0]
    kp = root_relative_keypoints(net.kinematic_model, q.float(), scales.float())
    q, scales, kp = (x.detach().cpu().double().numpy() for x in (q, scales, kp))
    masks, boxes = chunk_masks_and_boxes(chunks)
    return Prediction(q, scales, kp, masks, clip.fps, boxes)


def chunk_masks_and_boxes(chunks: list[ChunkEncoding]) -> tuple[np.ndarray, np.ndarray]:
    """(V, T, H, H) bool masks and (V, T, 4) boxes of a clip's chunks, in frame order."""
    masks = torch.cat([c.masks() for c in chunks], dim=1).numpy()
    boxes = torch.cat([c.frame_boxes() for c in chunks], dim=1).numpy()
    return masks, boxes


# ---- writing ---------------------------------------------------------------------------------


def write_prediction(
    prediction: Prediction, model: KinematicModel, out: str | Path, source_osim: str | Path
) -> InferenceFiles:
    """Write ``coordinates.mot``, ``scaled.osim`` (``source_osim`` scaled) and
    ``keypoints.npy`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    time = np.arange(len(prediction.coordinates)) / prediction.fps
    motion = Motion(time, prediction.coordinates, list(model.coordinate_names))
    mot = write_motion(model, motion, out / "coordinates.mot")
    osim = write_scaled_osim(source_osim, prediction.scales, out / "scaled.osim", "predicted")
    keypoints = out / "keypoints.npy"
    np.save(keypoints, prediction.keypoints)
    return InferenceFiles(mot, osim, keypoints)


def infer_clip(
    net: KinematicsNet, folder: str | Path, out: str | Path, temporal: bool = True
) -> InferenceFiles:
    """Predict the clip in ``folder`` and write its files into ``out``."""
    from biokin_nb.body.registration import GENERIC_MODEL

    prediction = predict(net, read_two_view(folder), temporal)
    return write_prediction(prediction, net.kinematic_model, out, GENERIC_MODEL)


def infer_folder(
    checkpoint: str | Path,
    root: str | Path,
    out: str | Path,
    config: NetConfig | None = None,
    device: str | None = None,
) -> dict[str, InferenceFiles]:
    """:func:`infer_clip` for every clip folder under ``root``, into ``out/<clip name>``;
    returns the files per clip name."""
    net = load_network(checkpoint, config=config, device=device)
    return {f.name: infer_clip(net, f, Path(out) / f.name) for f in clip_folders(root)}
