"""Network throughput: training samples/s and inference frames/s for both presets.

Training is stage 1 (frame encoder, ``frame_only``): a batch of single frames, forward,
loss, backward and an Adam step; a "sample" is one two-view frame. Inference is the full
network (temporal module on) without gradients over one clip; frames/s counts its frames.
Inputs come from the toy scene of :mod:`biokin_nb.net.toy`, built once. Mixed precision
(bfloat16 autocast) on CUDA. Usage:
``python bench/net.py [--device cpu] [--threads N] [--steps 3] [--paper-steps 1]``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch

from biokin_nb.net import KinematicsNet, NetConfig, auto_device, kinematics_loss
from biokin_nb.net.toy import ToyClips, toy_clips
from biokin_nb.osim import load_model

REPO = Path(__file__).resolve().parents[1]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(clips: ToyClips, device: torch.device) -> ToyClips:
    target = type(clips.target)(*(x.to(device) for x in vars(clips.target).values()))
    tensors = {k: v.to(device) for k, v in vars(clips).items() if k != "target"}
    return ToyClips(**tensors, target=target)


def timed(step, device: torch.device, steps: int) -> float:
    """Seconds per call of ``step`` after one warm-up call."""
    step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def train_rate(net: KinematicsNet, clips: ToyClips, device: torch.device, steps: int) -> float:
    """Stage-1 training samples (frames) per second; ``clips`` is (batch, 1 frame)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-5, betas=(0.5, 0.999))

    def step() -> None:
        with autocast(device):
            out = net(clips.images, clips.K, clips.R, clips.t, clips.masks, frame_only=True)
            loss = kinematics_loss(out, clips.target, net.layout).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    net.train()
    return clips.images.shape[0] / timed(step, device, steps)


def infer_rate(net: KinematicsNet, clip: ToyClips, device: torch.device, steps: int) -> float:
    """Full-network inference frames per second over one clip."""
    net.eval()

    def step() -> None:
        with torch.no_grad(), autocast(device):
            net(clip.images, clip.K, clip.R, clip.t, clip.masks)

    return clip.images.shape[1] / timed(step, device, steps)


def bench_preset(name: str, config: NetConfig, args, device: torch.device, model) -> dict:
    paper = name == "paper"
    batch = args.paper_batch if paper else args.batch
    frames = args.paper_frames if paper else config.sequence_length
    steps = args.paper_steps if paper else args.steps
    net = KinematicsNet(config, model).to(device)
    train = to_device(toy_clips(config, model, clips=batch, frames=1), device)
    clip = to_device(toy_clips(config, model, clips=1, frames=frames, seed=1), device)
    row = {
        "params": sum(p.numel() for p in net.parameters()),
        "train_batch_frames": batch,
        "infer_clip_frames": frames,
        "steps": steps,
    }
    row["train_samples_per_s"] = train_rate(net, train, device, steps)
    row["infer_fps"] = infer_rate(net, clip, device, steps)
    print(name, row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="default: CUDA, MPS or CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (cpu preset)")
    parser.add_argument("--batch", type=int, default=8, help="training frames (cpu preset)")
    parser.add_argument("--paper-steps", type=int, default=1)
    parser.add_argument("--paper-batch", type=int, default=None, help="default: 8 on GPU, 2 else")
    parser.add_argument("--paper-frames", type=int, default=None, help="default: 64 GPU, 8 else")
    args = parser.parse_args()
    device = auto_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    accelerated = device.type != "cpu"
    args.paper_batch = args.paper_batch or (8 if accelerated else 2)
    args.paper_frames = args.paper_frames or (64 if accelerated else 8)
    torch.manual_seed(0)
    model = load_model(REPO / "data" / "generic_model.osim")
    result = {
        name: bench_preset(name, config, args, device, model)
        for name, config in (("cpu", NetConfig.cpu()), ("paper", NetConfig.paper()))
    }
    result["device"] = str(device)
    result["threads"] = torch.get_num_threads()
    result["torch"] = torch.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
