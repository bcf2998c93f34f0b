"""Training of :class:`biokin_nb.net.KinematicsNet` on the synthetic two-view dataset.

Two stages as in Lin et al.: stage 1 trains the frame encoder (hourglass, point and frame
MLPs, heads) with the temporal module skipped (``frame_only``); stage 2 trains everything
with the temporal U-Net on T-frame windows. The loss is :func:`biokin_nb.net.kinematics_loss`
plus ``mask_weight`` times a BCE between the hourglass mask head and the synthetic person
masks, so inference needs no external segmenter, plus ``heatmap_weight`` times the MSE of the
hourglass keypoint heatmaps against the projected true keypoints (the 2D detector of the
multi-step baseline, :mod:`biokin_nb.baseline`).

A third, optional stage trains only the full-resolution mask refiner on the frozen network
(``stage3_epochs``): the hourglass mask head works at a quarter of the crop size.

Network input: every view is cut out in a square box and resized to
``NetConfig.image_size`` (:mod:`biokin_nb.net.crops`); the crop intrinsics follow. Training
boxes are person boxes around the true masks of the window, of a random scale and shift, or
for ``full_frame_fraction`` of the (window, view) pairs the full view; inference finds the
person in the full view first, then crops (:func:`biokin_nb.infer.predict`). During training
the points are sampled in the true masks; at inference in the predicted ones.

Output folder ``out``::

    last.pt        checkpoint after every epoch (weights, optimizer, stage, epoch); resume
    stage1.pt      the frame-only encoder at the end of stage 1
    final.pt       the network after all stages
    metrics.jsonl  one JSON object per epoch (stage, epoch, loss terms, mask BCE and IoU,
                   heatmap MSE)

Optimizer: Adam, betas (0.5, 0.999), lr 5e-5 (the paper's). Mixed precision (float16 with a
gradient scaler) on CUDA only. Seeds: ``seed + epoch`` at the start of every epoch, so a
resumed run shuffles as an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from biokin_nb.dataset import ClipWindows
from biokin_nb.net import (
    KinematicsNet,
    NetConfig,
    NetOutput,
    Target,
    auto_device,
    kinematics_loss,
    load_checkpoint,
    save_checkpoint,
)
from biokin_nb.net.checkpoint import read_checkpoint
from biokin_nb.net.crops import crop, full_box, random_boxes
from biokin_nb.net.heatmaps import heatmap_loss
from biokin_nb.net.points import crop_intrinsics as box_intrinsics
from biokin_nb.osim import KinematicModel, load_model

CHECKPOINT = "last.pt"
STAGE1 = "stage1.pt"
FINAL = "final.pt"
METRICS = "metrics.jsonl"


@dataclass
class TrainConfig:
    """What and how long to train.

    Attributes:
        root: the dataset folder (:func:`biokin_nb.dataset.generate`).
        out: folder for checkpoints and metrics.
        net: network sizes (default: the CPU preset).
        stage1_epochs, stage2_epochs: epochs of the frame-only and the temporal stage (>= 0).
        stage3_epochs: epochs of the mask refiner stage (>= 0; the network frozen, only
            :class:`~biokin_nb.net.hourglass.MaskRefiner` trained on full-resolution masks).
        window: frames per training window (default: ``net.sequence_length``).
        stride: frames between window starts (default: ``window``).
        batch_size: windows per step.
        lr: Adam learning rate; betas: Adam betas.
        mask_weight: weight of the mask BCE in the total loss.
        heatmap_weight: weight of the keypoint heatmap MSE (the multi-step baseline's 2D
            detector, :mod:`biokin_nb.net.heatmaps`); heatmap_sigma: its Gaussians' sigma
            (heatmap px).
        crop_scale, crop_jitter, full_frame_fraction: the crop boxes of training windows
            (:func:`biokin_nb.net.crops.random_boxes`): person boxes of a random scale and
            centre shift, or full views for this fraction of (window, view) pairs.
        max_steps: cap on steps per epoch (None: the whole split).
        seed: random seed.
        device: "cuda", "mps", "cpu" or None (the best available).
        amp: mixed precision (used on CUDA only).
        resume: continue from ``out/last.pt`` when it exists (else start over).
        progress: a tqdm progress bar per epoch.
    """

    root: str
    out: str = "runs/train"
    net: NetConfig = field(default_factory=NetConfig.cpu)
    stage1_epochs: int = 4
    stage2_epochs: int = 4
    stage3_epochs: int = 0
    window: int | None = None
    stride: int | None = None
    batch_size: int = 2
    lr: float = 5e-5
    betas: tuple[float, float] = (0.5, 0.999)
    mask_weight: float = 5.0
    heatmap_weight: float = 100.0
    heatmap_sigma: float = 1.0
    crop_scale: tuple[float, float] = (1.15, 1.5)
    crop_jitter: float = 0.05
    full_frame_fraction: float = 0.25
    max_steps: int | None = None
    seed: int = 0
    device: str | None = None
    amp: bool = True
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        problems = [
            f"{k} must be >= 0 (got {getattr(self, k)})"
            for k in ("stage1_epochs", "stage2_epochs", "stage3_epochs")
            if getattr(self, k) < 0
        ]
        problems += [
            f"{k} must be >= 1 (got {getattr(self, k)})"
            for k in ("batch_size", "window", "stride", "max_steps")
            if getattr(self, k) is not None and getattr(self, k) < 1
        ]
        if not self.lr > 0:
            problems.append(f"lr must be > 0 (got {self.lr})")
        if not (1.0 <= self.crop_scale[0] <= self.crop_scale[1]):
            problems.append(f"crop_scale must be 1 <= low <= high (got {self.crop_scale})")
        if not 0.0 <= self.full_frame_fraction <= 1.0:
            problems.append(
                f"full_frame_fraction must be in [0, 1] (got {self.full_frame_fraction})"
            )
        if self.stage3_epochs and not (self.net.mask_refine and self.net.mask_head):
            problems.append("stage3_epochs > 0 needs a config with mask_head and mask_refine")
        if not self.heatmap_sigma > 0:
            problems.append(f"heatmap_sigma must be > 0 (got {self.heatmap_sigma})")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    @property
    def frames(self) -> int:
        return self.window or self.net.sequence_length

    @property
    def epochs(self) -> int:
        return self.stage1_epochs + self.stage2_epochs + self.stage3_epochs

    def stage(self, epoch: int) -> int:
        """1, 2 or 3: the stage of global ``epoch`` (0-based)."""
        if epoch < self.stage1_epochs:
            return 1
        return 2 if epoch < self.stage1_epochs + self.stage2_epochs else 3

    def to_dict(self) -> dict:
        values = {k: v for k, v in dataclasses.asdict(self).items() if k != "net"}
        extra = {"betas": list(self.betas), "crop_scale": list(self.crop_scale)}
        return {**values, **extra, "net": self.net.to_dict()}


def net_preset(name: str) -> NetConfig:
    """NetConfig by preset name: "paper", "cpu" or "tiny" (the cpu preset shrunk further to
    64 px crops, one 16-channel hourglass, 32 points, T = 8: for tests and CI smoke runs)."""
    if name == "tiny":
        return dataclasses.replace(
            NetConfig.cpu(),
            image_size=64,
            hourglass_stacks=1,
            hourglass_channels=16,
            hourglass_depth=2,
            feature_channels=8,
            n_points=32,
            point_hidden=(32,),
            frame_hidden=(32,),
            frame_feature=16,
            sequence_length=8,
            temporal_channels=(8, 16, 32),
        )
    if name not in ("paper", "cpu"):
        raise ValueError(f"unknown network preset {name!r}; use 'paper', 'cpu' or 'tiny'")
    return getattr(NetConfig, name)()


@dataclass
class TrainResult:
    """A finished run: the final checkpoint, the per-epoch metrics, the time taken (s)."""

    checkpoint: Path
    metrics: list[dict]
    epochs_run: int
    seconds: float


# ---- network input ---------------------------------------------------------------------------


def crop_intrinsics(K: torch.Tensor, width: int, height: int, size: int) -> torch.Tensor:
    """(..., 3, 3) intrinsics of the letterbox crop: the (width, height) image zero-padded to a
    centred square, then resized to ``size`` px. Pixel centres at integers (see cameras)."""
    return box_intrinsics(K, full_box(width, height).to(K), size)


def letterbox(images: torch.Tensor, size: int) -> torch.Tensor:
    """(..., C, H, W) float images -> (..., C, size, size): zero-padded to a centred square,
    resized (bilinear, antialiased)."""
    return crop(images, full_box(images.shape[-1], images.shape[-2]), size)


@dataclass
class NetInput:
    """A batch ready for the network: S clips, T frames, V views, crops of side H.

    Attributes:
        images: (S, T, V, 3, H, H) in [0, 1]; masks: (S, T, V, H, H) bool (None if unknown).
        K, R: (S, 1, V, 3, 3) crop intrinsics (px) and rotations; t: (S, 1, V, 3) (m).
        boxes: (S, V, 4) the crop boxes in the full images (:mod:`biokin_nb.net.crops`).
    """

    images: torch.Tensor
    masks: torch.Tensor | None
    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    boxes: torch.Tensor

    def to(self, device: torch.device) -> NetInput:
        moved = [None if x is None else x.to(device) for x in dataclasses.astuple(self)]
        return NetInput(*moved)


def net_input(
    video: torch.Tensor,
    K: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    size: int,
    mask: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
) -> NetInput:
    """Crops of ``video`` (S, V, T, 3, H, W) in [0, 1] and ``mask`` (S, V, T, H, W) in
    ``boxes`` (S, V, 4) (default: full boxes, i.e. letterboxes) for cameras ``K``, ``R``
    (S, V, 3, 3) and ``t`` (S, V, 3) of the full images."""
    n_s, n_v = video.shape[:2]
    height, width = video.shape[-2:]
    if boxes is None:
        boxes = full_box(width, height).expand(n_s, n_v, 4)

    def cut(x: torch.Tensor) -> torch.Tensor:  # (S, V, T, C, H, W) -> (S, T, V, C, h, h)
        views = [[crop(x[i, j], boxes[i, j], size) for j in range(n_v)] for i in range(n_s)]
        return torch.stack([torch.stack(v) for v in views]).transpose(1, 2)

    images = cut(video.float())
    masks = None if mask is None else cut(mask.float()[..., None, :, :])[..., 0, :, :] > 0.5
    k = box_intrinsics(K.double(), boxes.double(), size).float()
    return NetInput(images, masks, k[:, None], R.float()[:, None], t.float()[:, None], boxes)


def batch_input(
    batch: dict, size: int, boxes: torch.Tensor | None = None
) -> tuple[NetInput, Target]:
    """The network input (crops in ``boxes``, default full boxes) and target of a
    :class:`~biokin_nb.dataset.ClipWindows` batch."""
    inputs = net_input(
        batch["video"], batch["K"], batch["R"], batch["t"], size, batch["mask"], boxes
    )
    target = Target(batch["coordinates"].float(), batch["scales"].float())
    return inputs, target


# ---- mask head -------------------------------------------------------------------------------


def mask_loss(output: NetOutput, masks: torch.Tensor) -> torch.Tensor:
    """Mean BCE of every stack's mask logits (stacks, S, T, V, h, w) against ``masks``
    (S, T, V, H, W) average-pooled to the logits' size (soft targets)."""
    logits = output.encoding.maps.mask_logits
    if logits is None:
        return masks.new_zeros((), dtype=torch.float32)
    target = F.adaptive_avg_pool2d(masks.float().flatten(0, 2), logits.shape[-2:])
    target = target.reshape(logits.shape[1:]).expand_as(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target)


def keypoint_loss(
    output: NetOutput, keypoints: torch.Tensor, inputs: NetInput, sigma: float
) -> torch.Tensor:
    """Heatmap MSE of the hourglass keypoint head against the true (S, T, P, 3) keypoints
    projected by the crop cameras (zero without a heatmap head)."""
    heatmaps = output.encoding.maps.heatmaps
    if heatmaps is None:
        return keypoints.new_zeros((), dtype=torch.float32)
    return heatmap_loss(heatmaps, keypoints, inputs.K, inputs.R, inputs.t, sigma)


def predicted_masks(output: NetOutput, size: int) -> torch.Tensor:
    """(S, T, V, size, size) bool: the last stack's mask logits upsampled, > 0."""
    logits = output.encoding.maps.mask_logits[-1].detach().float()
    lead = logits.shape[:-2]
    up = F.interpolate(logits.flatten(0, -3)[:, None], size=(size, size), mode="bilinear")
    return (up[:, 0] > 0).reshape(*lead, size, size)


def mask_iou(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Intersection over union of two bool mask tensors of equal shape (all pixels pooled)."""
    union = (pred | true).sum()
    return float((pred & true).sum() / union) if union else 1.0


# ---- training --------------------------------------------------------------------------------


def train_step(
    net: KinematicsNet,
    batch: dict,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    stage: int,
    config: TrainConfig,
    device: torch.device,
) -> dict[str, float]:
    """One optimizer step on ``batch``; returns the loss terms, mask BCE and IoU as floats
    (stage 3: :func:`refine_step`)."""
    if stage == 3:
        return refine_step(net, batch, optimizer, config, device)
    boxes = random_boxes(
        batch["mask"], config.crop_scale, config.crop_jitter, config.full_frame_fraction
    )
    inputs, target = batch_input(batch, net.config.image_size, boxes)
    inputs = inputs.to(device)
    target = Target(target.coordinates.to(device), target.scales.to(device))
    use_amp = config.amp and device.type == "cuda"
    with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
        output = net(*_args(inputs), inputs.masks, frame_only=stage == 1)
        terms = kinematics_loss(output, target, net.layout, net.config.position_weight)
        bce = mask_loss(output, inputs.masks)
        hm = keypoint_loss(output, batch["keypoints"].to(device), inputs, config.heatmap_sigma)
    loss = terms.total + config.mask_weight * bce + config.heatmap_weight * hm
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {terms.as_floats()}; lower lr")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    iou = mask_iou(predicted_masks(output, net.config.image_size), inputs.masks)
    extra = {"mask_bce": float(bce.detach()), "heatmap": float(hm.detach()), "mask_iou": iou}
    return {**terms.as_floats(), **extra}


def refine_step(
    net: KinematicsNet,
    batch: dict,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    device: torch.device,
) -> dict[str, float]:
    """One stage-3 step: the mask refiner against the full-resolution true masks (BCE), the
    hourglass frozen; returns the BCE and the refined masks' IoU."""
    boxes = random_boxes(
        batch["mask"], config.crop_scale, config.crop_jitter, config.full_frame_fraction
    )
    inputs = batch_input(batch, net.config.image_size, boxes)[0].to(device)
    with torch.no_grad():
        maps = net.views(inputs.images)
    logits = net.mask_logits(inputs.images, maps)
    loss = F.binary_cross_entropy_with_logits(logits, inputs.masks.float())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    iou = mask_iou(logits.detach() > 0, inputs.masks)
    return {"mask_refine_bce": float(loss.detach()), "mask_iou": iou}


def _args(inputs: NetInput) -> tuple[torch.Tensor, ...]:
    return inputs.images, inputs.K, inputs.R, inputs.t


def stage_parameters(net: KinematicsNet, stage: int) -> list[torch.nn.Parameter]:
    """Stage 1: everything but the temporal module; stage 2: everything; stage 3: the mask
    refiner only."""
    if stage == 3:
        return list(net.mask_refiner.parameters())
    skip = {id(p) for p in net.temporal.parameters()} if stage == 1 else set()
    return [p for p in net.parameters() if id(p) not in skip]


def train(config: TrainConfig, model: KinematicModel | None = None) -> TrainResult:
    """Train both stages (resuming from ``out/last.pt`` if ``config.resume``); returns the
    final checkpoint and per-epoch metrics.

    Raises:
        ValueError: the training split has no window of ``config.frames`` frames.
        CheckpointMismatchError: ``out/last.pt`` was written for another network config.
    """
    started = time.perf_counter()
    model = model or _generic_model()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    device = auto_device(config.device)
    windows = _windows(config, model)
    torch.manual_seed(config.seed)
    net = KinematicsNet(config.net, model).to(device)
    first, optimizer_state = _resume(net, config, out)
    optimizer, opt_stage = None, 0
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp and device.type == "cuda")
    for epoch in range(first, config.epochs):
        stage = config.stage(epoch)
        if stage != opt_stage:
            optimizer, opt_stage = _optimizer(net, stage, config), stage
            if optimizer_state is not None and optimizer_state["stage"] == stage:
                optimizer.load_state_dict(optimizer_state["optimizer"])
        row = _epoch(net, windows, optimizer, scaler, stage, epoch, config, device)
        _append_metrics(out / METRICS, row)
        extra = {"stage": stage, "epoch": epoch + 1, "optimizer": optimizer.state_dict()}
        save_checkpoint(net, out / CHECKPOINT, {**extra, "train": config.to_dict()})
        if epoch + 1 == config.stage1_epochs:
            save_checkpoint(net, out / STAGE1, {"stage": 1, "epoch": epoch + 1})
    extra = {"stage": config.stage(config.epochs - 1), "epoch": config.epochs}
    final = save_checkpoint(net, out / FINAL, extra)
    seconds = time.perf_counter() - started
    return TrainResult(final, read_metrics(out), config.epochs - first, seconds)


def _generic_model() -> KinematicModel:
    from biokin_nb.body.registration import GENERIC_MODEL

    return load_model(GENERIC_MODEL)


def _windows(config: TrainConfig, model: KinematicModel) -> ClipWindows:
    windows = ClipWindows(config.root, "train", config.frames, config.stride, model)
    if not len(windows):
        frames = sorted({r["frames"] for r in windows.rows})
        raise ValueError(
            f"no training window of {config.frames} frames in {config.root} (train clips have "
            f"{frames or 'no'} frames); lower TrainConfig.window or generate longer clips"
        )
    return windows


def _optimizer(net: KinematicsNet, stage: int, config: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(stage_parameters(net, stage), lr=config.lr, betas=config.betas)


def _resume(net: KinematicsNet, config: TrainConfig, out: Path) -> tuple[int, dict | None]:
    """(first epoch to run, {"stage", "optimizer"} or None); without resume, old metrics and
    checkpoints are removed."""
    path = out / CHECKPOINT
    if not (config.resume and path.is_file()):
        for name in (CHECKPOINT, STAGE1, FINAL, METRICS):
            (out / name).unlink(missing_ok=True)
        return 0, None
    extra = load_checkpoint(net, path)
    _truncate_metrics(out / METRICS, extra["epoch"])
    return int(extra["epoch"]), {"stage": extra["stage"], "optimizer": extra["optimizer"]}


def _epoch(
    net: KinematicsNet,
    windows: ClipWindows,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    stage: int,
    epoch: int,
    config: TrainConfig,
    device: torch.device,
) -> dict:
    """Train one epoch; returns its metrics row (means over steps)."""
    from tqdm.auto import tqdm

    torch.manual_seed(config.seed + epoch)
    generator = torch.Generator().manual_seed(config.seed + epoch)
    loader = DataLoader(windows, config.batch_size, shuffle=True, generator=generator)
    steps = len(loader) if config.max_steps is None else min(len(loader), config.max_steps)
    started = time.perf_counter()
    net.train()
    rows, samples = [], 0
    desc = f"stage {stage} epoch {epoch + 1}/{config.epochs}"
    bar = tqdm(loader, total=steps, desc=desc, disable=not config.progress)
    for batch in bar:
        rows.append(train_step(net, batch, optimizer, scaler, stage, config, device))
        samples += len(batch["video"])
        bar.set_postfix(loss=f"{rows[-1].get('total', rows[-1].get('mask_refine_bce')):.3f}")
        if len(rows) >= steps:
            break
    bar.close()
    means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    seconds = time.perf_counter() - started
    head = {"stage": stage, "epoch": epoch + 1, "steps": len(rows), "seconds": seconds}
    return {**head, **means, "samples_per_s": samples / seconds}


# ---- metrics file ----------------------------------------------------------------------------


def _append_metrics(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(row) + "\n")


def _truncate_metrics(path: Path, epochs: int) -> None:
    """Keep the rows of the first ``epochs`` epochs (a run stopped after a row was written
    but before its checkpoint repeats that epoch)."""
    if path.is_file():
        rows = [r for r in _rows(path) if r["epoch"] <= epochs]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def read_metrics(out: str | Path) -> list[dict]:
    """The per-epoch metrics rows of a training folder (empty list when none)."""
    path = Path(out) / METRICS
    return _rows(path) if path.is_file() else []


def checkpoint_stage(path: str | Path) -> int:
    """The stage (1, 2 or 3) a checkpoint was saved in."""
    return int(read_checkpoint(path)["extra"].get("stage", 2))


LOSS_TERMS = ("total", "position", "mask_bce", "heatmap", "mask_refine_bce")


def loss_figure(metrics: list[dict], terms: tuple[str, ...] = LOSS_TERMS):
    """Plotly figure of per-epoch loss ``terms`` (log y; terms a run did not log are left
    out), one line where each later stage starts. ``total`` is the kinematics loss of Lin
    et al."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for term in terms:
        rows = [r for r in metrics if term in r]
        if rows:
            x, y = [r["epoch"] for r in rows], [r[term] for r in rows]
            fig.add_trace(go.Scatter(x=x, y=y, name=term))
    names = {2: "stage 2 (temporal)", 3: "stage 3 (mask refiner)"}
    for stage, name in names.items():
        first = [r["epoch"] for r in metrics if r["stage"] == stage]
        if first and first[0] > metrics[0]["epoch"]:
            fig.add_vline(x=first[0] - 0.5, line_dash="dot", annotation_text=name)
    fig.update_layout(xaxis_title="epoch", yaxis_title="loss", yaxis_type="log")
    return fig
