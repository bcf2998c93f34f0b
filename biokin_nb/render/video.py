"""Video and mask files: H.264 ``.mp4`` (yuv420p, any player opens it) through
imageio-ffmpeg, and per-frame person masks as bit-packed arrays in a compressed ``.npz``.

Frames are (H, W, 3) uint8 RGB. H.264 in yuv420p needs even sizes: odd widths or heights
are padded by one replicated column or row when encoding and cropped by
:func:`read_video` when it is given the true size. Both writers are atomic (a temporary
file renamed at the end).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from biokin_nb._files import atomic_write

FPS = 60.0
CRF = 18  # x264 quality: visually lossless


class VideoWriter:
    """Write frames one at a time to an H.264 ``.mp4``; the file appears on :meth:`close`.

    Args:
        path: destination ``.mp4`` (its folder must exist).
        size: (width, height) of the frames.
        fps: frame rate (Hz).
    """

    def __init__(self, path: str | os.PathLike[str], size: tuple[int, int], fps: float = FPS):
        width, height = (int(s) for s in size)
        if width <= 0 or height <= 0 or not fps > 0:
            raise ValueError(f"size and fps must be positive; got {width} x {height}, {fps}")
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"folder {self.path.parent} does not exist; create it first")
        self.size = (width, height)
        self.frames = 0
        self._tmp = self.path.with_name(f".{self.path.stem}.{secrets.token_hex(4)}.tmp.mp4")
        padded = (width + width % 2, height + height % 2)
        self._writer = imageio_ffmpeg.write_frames(
            str(self._tmp),
            padded,
            fps=fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            quality=None,
            macro_block_size=2,
            output_params=["-crf", str(CRF), "-preset", "veryfast"],
            ffmpeg_log_level="error",
        )
        self._writer.send(None)

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 frame."""
        frame = np.asarray(frame)
        width, height = self.size
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frames must be ({height}, {width}, 3) uint8; got {frame.shape} {frame.dtype}"
            )
        if width % 2 or height % 2:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        self._writer.send(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        self._writer.close()
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            raise ValueError(f"no frame was written to {self.path}")
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        try:
            self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(
    path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float = FPS
) -> Path:
    """Write (H, W, 3) uint8 frames as an H.264 ``.mp4``; returns the path."""
    iterator = iter(frames)
    try:
        first = np.asarray(next(iterator))
    except StopIteration:
        raise ValueError(f"no frame to write to {path}") from None
    with VideoWriter(path, (first.shape[1], first.shape[0]), fps) as writer:
        writer.write(first)
        for frame in iterator:
            writer.write(frame)
    return Path(path)


def iter_video(
    path: str | os.PathLike[str], size: tuple[int, int] | None = None
) -> Iterator[np.ndarray]:
    """Yield the (H, W, 3) uint8 frames of a video; ``size`` (width, height) crops the
    encoder's padding of odd sizes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video at {path}")
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    for buffer in reader:
        frame = np.frombuffer(buffer, dtype=np.uint8).reshape(height, width, 3)
        if size is not None:
            frame = frame[: size[1], : size[0]]
        yield frame


def read_video(
    path: str | os.PathLike[str],
    size: tuple[int, int] | None = None,
    frames: slice | None = None,
) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a video (``frames``: a slice of them, decoded only up
    to its end)."""
    wanted = frames if frames is not None else slice(None)
    out = []
    for i, frame in enumerate(iter_video(path, size)):
        if wanted.stop is not None and i >= wanted.stop:
            break
        out.append(frame)
    return np.stack(out)[slice(wanted.start, None, wanted.step)]


def write_masks(
    path: str | os.PathLike[str], masks: Mapping[str, np.ndarray | Sequence[np.ndarray]]
) -> Path:
    """Write masks ``{name: frames}`` (a (T, H, W) bool array or a sequence of (H, W) bool
    frames) bit-packed along W in a compressed ``.npz``: ``name`` (T, H, ceil(W / 8)) uint8
    and ``name_shape`` (T, H, W). Read them with :func:`read_masks`."""
    packed, width = {}, None
    for name, frames in masks.items():
        shapes = {np.shape(f) for f in frames}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(f"mask {name!r} must be T >= 1 frames of one (H, W) shape")
        width = next(iter(shapes))[1]
        packed[name] = [np.packbits(np.asarray(f, dtype=bool), axis=-1) for f in frames]
    return write_packed_masks(path, packed, width)


def write_packed_masks(
    path: str | os.PathLike[str], packed: Mapping[str, Sequence[np.ndarray]], width: int
) -> Path:
    """Write already bit-packed mask frames ``{name: [(H, ceil(W / 8)) uint8, ...]}`` of
    width ``width`` in :func:`write_masks`'s format (long full-size clips stay small in
    memory this way)."""
    arrays = {}
    for name, frames in packed.items():
        stacked = np.stack(list(frames))
        if stacked.ndim != 3 or stacked.shape[-1] != (width + 7) // 8:
            raise ValueError(f"mask {name!r}: packed frames do not match width {width}")
        arrays[name] = stacked
        arrays[f"{name}_shape"] = np.array((*stacked.shape[:2], width))
    with atomic_write(path, "wb") as file:
        np.savez_compressed(file, **arrays)
    return Path(path)


def read_masks(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The masks ``{name: (T, H, W) bool}`` of :func:`write_masks`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no masks file at {path}")
    with np.load(path) as data:
        names = [k for k in data.files if not k.endswith("_shape")]
        out = {}
        for name in names:
            shape = tuple(int(s) for s in data[f"{name}_shape"])
            out[name] = np.unpackbits(data[name], axis=-1, count=shape[-1]).astype(bool)
    return out


def write_gif(
    path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float = 20.0
) -> Path:
    """Write (H, W, 3) uint8 frames as a looping animated GIF (atomic); returns the path."""
    from PIL import Image  # pyvista's dependency

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    if not images:
        raise ValueError(f"no frame to write to {path}")
    with atomic_write(path, "wb") as file:
        images[0].save(
            file,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=int(round(1000 / fps)),
            loop=0,
        )
    return Path(path)
