"""Training of :class:`biokin_nb.net.KinematicsNet` on the synthetic two-view dataset.

Two stages, as in Lin et al.: stage 1 trains the frame encoder (hourglass, point and frame
MLPs, heads) with the temporal module skipped (``frame_only``); stage 2 trains everything
with the temporal U-Net on T-frame windows. The loss is :func:`biokin_nb.net.kinematics_loss`
plus ``mask_weight`` times a BCE between the hourglass mask head and the synthetic person
masks, so inference needs no external segmenter.

Network input: every view is letterboxed to a square (zero padding, centred) and resized to
``NetConfig.image_size``; the crop intrinsics follow (:func:`crop_intrinsics`). During
training the points are sampled in the true masks; at inference in the mask head's.

Output folder ``out``::

    last.pt        checkpoint after every epoch (weights, optimizer, stage, epoch); resume
    stage1.pt      the frame-only encoder at the end of stage 1
    final.pt       the network after both stages
    metrics.jsonl  one JSON object per epoch (stage, epoch, loss terms, mask BCE and IoU)

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
        window: frames per training window (default: ``net.sequence_length``).
        stride: frames between window starts (default: ``window``).
        batch_size: windows per step.
        lr: Adam learning rate; betas: Adam betas.
        mask_weight: weight of the mask BCE in the total loss.
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
    window: int | None = None
    stride: int | None = None
    batch_size: int = 2
    lr: float = 5e-5
    betas: tuple[float, float] = (0.5, 0.999)
    mask_weight: float = 1.0
    max_steps: int | None = None
    seed: int = 0
    device: str | None = None
    amp: bool = True
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        problems = [
            f"{k} must be >= 0 (got {getattr(self, k)})"
            for k in ("stage1_epochs", "stage2_epochs")
            if getattr(self, k) < 0
        ]
        problems += [
            f"{k} must be >= 1 (got {getattr(self, k)})"
            for k in ("batch_size", "window", "stride", "max_steps")
            if getattr(self, k) is not None and getattr(self, k) < 1
        ]
        if not self.lr > 0:
            problems.append(f"lr must be > 0 (got {self.lr})")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    @property
    def frames(self) -> int:
        return self.window or self.net.sequence_length

    @property
    def epochs(self) -> int:
        return self.stage1_epochs + self.stage2_epochs

    def stage(self, epoch: int) -> int:
        """1 or 2: the stage of global ``epoch`` (0-based)."""
        return 1 if epoch < self.stage1_epochs else 2

    def to_dict(self) -> dict:
        values = {k: v for k, v in dataclasses.asdict(self).items() if k != "net"}
        return {**values, "betas": list(self.betas), "net": self.net.to_dict()}


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
    side = max(width, height)
    s = size / side
    pad_u, pad_v = (side - width) // 2, (side - height) // 2
    a = K.new_tensor(
        [[s, 0.0, (pad_u + 0.5) * s - 0.5], [0.0, s, (pad_v + 0.5) * s - 0.5], [0, 0, 1.0]]
    )
    return a @ K


def letterbox(images: torch.Tensor, size: int) -> torch.Tensor:
    """(..., C, H, W) float images -> (..., C, size, size): zero-padded to a centred square,
    resized (bilinear, antialiased)."""
    h, w = images.shape[-2:]
    side = max(h, w)
    pad_u, pad_v = (side - w) // 2, (side - h) // 2
    lead = images.shape[:-3]
    flat = F.pad(images.flatten(0, -4), (pad_u, side - w - pad_u, pad_v, side - h - pad_v))
    out = F.interpolate(flat, size=(size, size), mode="bilinear", antialias=True)
    return out.reshape(*lead, images.shape[-3], size, size)


@dataclass
class NetInput:
    """A batch ready for the network: S clips, T frames, V views, crops of side H.

    Attributes:
        images: (S, T, V, 3, H, H) in [0, 1]; masks: (S, T, V, H, H) bool (None if unknown).
        K, R: (S, 1, V, 3, 3) crop intrinsics (px) and rotations; t: (S, 1, V, 3) (m).
    """

    images: torch.Tensor
    masks: torch.Tensor | None
    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor

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
) -> NetInput:
    """Letterbox crops of ``video`` (S, V, T, 3, H, W) in [0, 1] and ``mask`` (S, V, T, H, W)
    for cameras ``K``, ``R`` (S, V, 3, 3) and ``t`` (S, V, 3) of the full images."""
    height, width = video.shape[-2:]
    images = letterbox(video.float(), size).transpose(1, 2)
    masks = None
    if mask is not None:
        soft = letterbox(mask.float()[..., None, :, :], size)[..., 0, :, :]
        masks = (soft > 0.5).transpose(1, 2)
    k = crop_intrinsics(K.float(), width, height, size)
    return NetInput(images, masks, k[:, None], R.float()[:, None], t.float()[:, None])


def batch_input(batch: dict, size: int) -> tuple[NetInput, Target]:
    """The network input and target of a :class:`~biokin_nb.dataset.ClipWindows` batch."""
    inputs = net_input(batch["video"], batch["K"], batch["R"], batch["t"], size, batch["mask"])
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
    """One optimizer step on ``batch``; returns the loss terms, mask BCE and IoU as floats."""
    inputs, target = batch_input(batch, net.config.image_size)
    inputs = inputs.to(device)
    target = Target(target.coordinates.to(device), target.scales.to(device))
    use_amp = config.amp and device.type == "cuda"
    with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
        output = net(*_args(inputs), inputs.masks, frame_only=stage == 1)
        terms = kinematics_loss(output, target, net.layout, net.config.position_weight)
        bce = mask_loss(output, inputs.masks)
    loss = terms.total + config.mask_weight * bce
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {terms.as_floats()}; lower lr")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    iou = mask_iou(predicted_masks(output, net.config.image_size), inputs.masks)
    return {**terms.as_floats(), "mask_bce": float(bce.detach()), "mask_iou": iou}


def _args(inputs: NetInput) -> tuple[torch.Tensor, ...]:
    return inputs.images, inputs.K, inputs.R, inputs.t


def stage_parameters(net: KinematicsNet, stage: int) -> list[torch.nn.Parameter]:
    """Stage 1: everything but the temporal module; stage 2: everything."""
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
    final = save_checkpoint(net, out / FINAL, {"stage": 2, "epoch": config.epochs})
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
        bar.set_postfix(loss=f"{rows[-1]['total']:.3f}")
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
    """The stage (1 or 2) a checkpoint was saved in."""
    return int(read_checkpoint(path)["extra"].get("stage", 2))


def loss_figure(metrics: list[dict], terms: tuple[str, ...] = ("total", "position", "mask_bce")):
    """Plotly figure of per-epoch loss ``terms`` (log y), stage 2 epochs after stage 1."""
    import plotly.graph_objects as go

    fig = go.Figure()
    epochs = [r["epoch"] for r in metrics]
    for term in terms:
        fig.add_trace(go.Scatter(x=epochs, y=[r[term] for r in metrics], name=term))
    stage2 = [r["epoch"] for r in metrics if r["stage"] == 2]
    if stage2 and len(stage2) < len(metrics):
        fig.add_vline(x=stage2[0] - 0.5, line_dash="dot", annotation_text="stage 2 (temporal)")
    fig.update_layout(xaxis_title="epoch", yaxis_title="loss", yaxis_type="log")
    return fig
