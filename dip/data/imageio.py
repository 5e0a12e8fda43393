"""Image files in and out, and the conversions the rest of the library relies on.

Conventions (docs/ARCHITECTURE.md): an image is a ``float32`` array ``(H, W, C)``, ``C in {1, 3}``, values in
``[0, 1]``; grey images keep a trailing channel axis of 1. Inside a fit images are ``(1, C, H, W)`` tensors.

Reading is strict on purpose: a file that cannot be fully decoded, or one whose transparency would silently be thrown
away, raises :class:`~dip.errors.DipInputError` with the path and the reason rather than producing a wrong result.
Writing is atomic (:mod:`dip.files`), so an interrupted or failed write never leaves a half-written PNG behind for a
pipeline to pick up. Cropping has one home too: :func:`centre_crop_box` finds a centred box, :func:`crop_to_box` cuts it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from dip.errors import DamagedFile, DipInputError
from dip.files import atomic_write

__all__ = [
    "read_image",
    "write_image",
    "check_image",
    "to_pil",
    "to_tensor",
    "to_numpy",
    "centre_crop_box",
    "crop_to_box",
    "centre_crop",
    "crop_to_multiple",
    "put_in_center",
    "uint8_roundtrip",
    "luminance",
]

# ITU-R BT.601 luma weights: what Pillow's convert("L") and the authors' eval script (via OpenCV) use.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float64)

_READ_MODES = ("auto", "rgb", "grey")
_ALPHA_POLICIES = ("drop_opaque", "ignore")
# Modes whose pixels are unsigned 16-bit samples stored by Pillow as 'I;16*' or widened to 32-bit 'I'.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Colour spaces Pillow can convert to RGB itself.
_CONVERT_TO_RGB = ("CMYK", "YCbCr", "LAB", "HSV", "RGBX")


def luminance(img: np.ndarray) -> np.ndarray:
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of an ``(H, W, 3)`` image, as ``(H, W, 1)`` float32."""
    y = np.asarray(img, dtype=np.float64) @ LUMA_WEIGHTS
    return y[..., None].astype(np.float32)


def _decode(path: Path) -> Image.Image:
    """Open and fully decode ``path``; every failure becomes a DipInputError naming the file and the reason."""
    if not path.exists():
        raise DipInputError(f"cannot read image {path}: no such file (check the path)")
    if path.is_dir():
        raise DipInputError(f"cannot read image {path}: it is a directory, not an image file")
    try:
        img = Image.open(path)
    except Image.UnidentifiedImageError:
        raise DipInputError(
            f"cannot identify {path} as an image: not a format Pillow recognises (use PNG, JPEG, TIFF, BMP, ...)"
        ) from None
    except PermissionError as exc:
        raise DipInputError(f"cannot read image {path}: permission denied ({exc.strerror})") from None
    except OSError as exc:
        raise DipInputError(f"cannot read image {path}: {exc}") from None
    try:
        # Image.open only parses the header; load() decodes every pixel, which is where truncated or corrupt files
        # fail. Without it a truncated PNG would only fail later, far from the file that caused it.
        img.load()
    except Image.DecompressionBombError as exc:
        img.close()
        raise DipInputError(f"cannot read image {path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError...
        img.close()
        raise DamagedFile(path, "image", f"{type(exc).__name__}: {exc}") from None
    return img


def _split_alpha(arr: np.ndarray, path: Path, alpha: str, max_value: float) -> np.ndarray:
    """Remove the last (alpha) channel, refusing real transparency unless the caller asked to ignore it."""
    colour, alpha_channel = arr[..., :-1], arr[..., -1]
    if alpha == "drop_opaque" and np.any(alpha_channel < max_value):
        transparent = float(np.mean(alpha_channel < max_value))
        raise DipInputError(
            f"{path} has transparent pixels ({transparent:.1%} of the image): transparency is not supported. "
            "Flatten the image onto a background first, or, for inpainting, turn the transparent area into a mask"
        )
    return colour


def read_image(path: str | os.PathLike, *, mode: str = "auto", alpha: str = "drop_opaque") -> np.ndarray:
    """Read an image file as a float32 ``(H, W, C)`` array in ``[0, 1]``.

    mode: ``"auto"`` keeps grey files grey (C=1) and colour files RGB (C=3); ``"rgb"`` always returns 3 channels
        (grey is repeated); ``"grey"`` always returns 1 channel (colour is reduced to BT.601 luminance).
    alpha: ``"drop_opaque"`` drops an alpha channel that is fully opaque and refuses real transparency;
        ``"ignore"`` drops it regardless (e.g. the authors' RGBA super-resolution outputs).

    Handles 8-bit grey/RGB, 16-bit grey (scaled by 65535), palette images, grey+alpha, RGBA, CMYK (and the other
    colour spaces Pillow converts to RGB). EXIF orientation is applied so the array matches what viewers show.
    """
    if mode not in _READ_MODES:
        raise DipInputError(f"unknown read mode {mode!r}; choose one of: {', '.join(_READ_MODES)}")
    if alpha not in _ALPHA_POLICIES:
        raise DipInputError(f"unknown alpha policy {alpha!r}; choose one of: {', '.join(_ALPHA_POLICIES)}")
    path = Path(path)
    img = _decode(path)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 -- a broken EXIF block should not make a decodable image unreadable
        pass

    if img.mode == "1":
        img = img.convert("L")
    elif img.mode == "P" or img.mode == "PA":
        # A palette may carry transparency (tRNS); keep it as alpha so it is checked like any other alpha channel.
        has_alpha = img.mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    elif img.mode in _CONVERT_TO_RGB:
        img = img.convert("RGB")
    elif img.mode in ("La", "RGBa"):  # premultiplied alpha
        img = img.convert("LA" if img.mode == "La" else "RGBA")

    if img.mode in _SIXTEEN_BIT_MODES:
        arr = np.asarray(img, dtype=np.float64)
        if arr.min() < 0 or arr.max() > 65535:
            raise DipInputError(
                f"cannot read image {path}: 32-bit integer pixels outside the 16-bit range "
                f"({arr.min():.0f}..{arr.max():.0f}) are not supported"
            )
        out = (arr / 65535.0)[..., None]
    elif img.mode in ("L", "LA", "RGB", "RGBA"):
        arr = np.asarray(img, dtype=np.float64)
        if arr.ndim == 2:
            arr = arr[..., None]
        if img.mode in ("LA", "RGBA"):
            arr = _split_alpha(arr, path, alpha, 255.0)
        out = arr / 255.0
    else:
        raise DipInputError(
            f"cannot read image {path}: pixel mode {img.mode!r} is not supported (use 8/16-bit grey or 8-bit RGB)"
        )

    if mode == "rgb" and out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    elif mode == "grey" and out.shape[2] == 3:
        out = (out @ LUMA_WEIGHTS)[..., None]
    return np.ascontiguousarray(out, dtype=np.float32)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """Round ``clip(img, 0, 1) * 255`` to uint8 (rounding, not the truncation of the authors' ``np_to_pil``)."""
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def _as_hwc(img: np.ndarray, what: str = "image") -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise DipInputError(f"expected an {what} of shape (H, W), (H, W, 1) or (H, W, 3), got {arr.shape}")
    return arr


def check_image(img: np.ndarray, what: str = "image") -> np.ndarray:
    """``img`` as a float32 ``(H, W, 1|3)`` array; DipInputError naming ``what`` for any other shape.

    Stricter than what :func:`write_image` takes (no ``(H, W)``): the functions that compute on images (degradations,
    baselines, the fit's inputs) want the channel axis to be there already.
    """
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise DipInputError(f"expected an (H, W, 1|3) {what}, got shape {arr.shape}")
    return arr


def to_pil(img: np.ndarray) -> Image.Image:
    """An 8-bit Pillow image (mode 'L' for grey, 'RGB' for colour) of a float ``(H, W, 1|3)`` image in [0, 1].

    The rounding to 8 bits is computed in ``img``'s own dtype: callers that must reproduce earlier results pass the
    dtype they always used (float32 and float64 round a handful of pixels differently at exact halves).
    """
    u8 = _to_uint8(img)
    return Image.fromarray(u8[..., 0], mode="L") if u8.shape[2] == 1 else Image.fromarray(u8, mode="RGB")


def write_image(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Write ``img`` as an 8-bit PNG (grey stays mode 'L'), atomically (:func:`dip.files.atomic_write`); create missing
    parent folders. Returns the path written."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise DipInputError(f"write_image writes PNG files; give a path ending in .png, got {path}")
    arr = _as_hwc(img)
    if arr.dtype.kind not in "fb":
        # A uint8 array (0..255) would be clipped to 0/1 and saved as an almost black-and-white image.
        raise DipInputError(f"write_image takes float images in [0, 1], got dtype {arr.dtype}; divide by 255 first")
    if not np.all(np.isfinite(arr)):
        raise DipInputError(f"refusing to write {path}: the image contains NaN or infinite values")
    pil = to_pil(arr.astype(np.float64))
    with atomic_write(path) as fh:
        pil.save(fh, format="PNG")
    return path


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` (or ``(H, W)``) numpy image -> ``(1, C, H, W)`` float32 tensor (a copy)."""
    arr = _as_hwc(img)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)).unsqueeze(0)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """``(1, C, H, W)`` or ``(C, H, W)`` tensor -> ``(H, W, C)`` float32 numpy image (detached, on the CPU)."""
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"to_numpy takes a batch of one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3:
        raise ValueError(f"expected a (1, C, H, W) or (C, H, W) tensor, got shape {tuple(t.shape)}")
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy().transpose(1, 2, 0))


def centre_crop_box(h: int, w: int, d: int = 1, *, size: int | Sequence[int] | None = None) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the centred crop of an ``h`` x ``w`` image whose sides are multiples of ``d``.

    size: the crop's side (one number) or ``(height, width)``, at most the image's; None takes the whole image. Either
    way the sides are then reduced to the largest multiples of ``d``. Offsets use the authors' ``crop_image``
    rounding, ``int((W - W') / 2)`` (floor; the paper-era Python 2 integer division in ``put_in_center`` gives the
    same box). A side may come out 0 when the image (or ``size``) is smaller than ``d``; callers say what that means.
    """
    if d < 1:
        raise DipInputError(f"the size multiple must be a positive integer, got {d}")
    if size is None:
        new_h, new_w = h, w
    else:
        new_h, new_w = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
        new_h, new_w = min(new_h, h), min(new_w, w)
    new_h, new_w = new_h - new_h % d, new_w - new_w % d
    return int((h - new_h) / 2), int((w - new_w) / 2), new_h, new_w


def crop_to_box(img: np.ndarray | None, box: Sequence[int] | None, scale: int = 1) -> np.ndarray | None:
    """``img`` inside ``box`` = ``(top, left, height, width)`` (a view, not a copy); None for either passes through.

    scale: multiplies every number of the box, to cut the high-resolution image along a box found in low-resolution
    pixels (super-resolution: the fit crops the LR input, the ground truth is ``factor`` times larger).
    """
    if img is None or box is None:
        return img
    top, left, h, w = (int(v) * scale for v in box)
    return img[top : top + h, left : left + w]


def centre_crop(img: np.ndarray, size: int | Sequence[int] | None, multiple: int = 1) -> np.ndarray:
    """The centred ``size`` x ``size`` (or ``(h, w)``) crop of ``img``; ``None`` keeps the whole image. Both sides
    are then reduced to multiples of ``multiple`` (:func:`centre_crop_box`). A view, not a copy."""
    h, w = img.shape[:2]
    box = centre_crop_box(h, w, multiple, size=size)
    if box[2] < 1 or box[3] < 1:
        raise DipInputError(f"cannot crop a {w}x{h} image to {size} (multiple of {multiple})")
    return crop_to_box(img, box)


def crop_to_multiple(img: np.ndarray, d: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Centre-crop ``img`` so that H and W are multiples of ``d``; returns the crop (a copy) and its ``(top, left)``."""
    h, w = img.shape[:2]
    box = centre_crop_box(h, w, d)
    if box[2] == 0 or box[3] == 0:
        raise DipInputError(f"the image ({w}x{h}) is smaller than {d} pixels on a side; it cannot be cropped to a "
                            f"multiple of {d}")
    return crop_to_box(img, box).copy(), box[:2]


def put_in_center(img: np.ndarray, full_shape: tuple[int, ...]) -> np.ndarray:
    """Zero-pad ``img`` back into a frame of ``full_shape`` ((H, W) or (H, W, C)), centred as ``crop_to_multiple``.

    The inverse placement of the authors' ``put_in_center``: a DIP output for the multiple-of-32 crop lands where it
    came from, zeros elsewhere (their released ``*_deep_prior.png`` files look exactly like this).
    """
    arr = _as_hwc(img)
    full_h, full_w = int(full_shape[0]), int(full_shape[1])
    h, w, c = arr.shape
    if h > full_h or w > full_w:
        raise DipInputError(f"cannot put a {w}x{h} image in the centre of a smaller {full_w}x{full_h} frame")
    box = centre_crop_box(full_h, full_w, size=(h, w))
    out = np.zeros((full_h, full_w, c), dtype=arr.dtype)
    out[box[0] : box[0] + h, box[1] : box[1] + w] = arr
    return out


def uint8_roundtrip(img: np.ndarray) -> np.ndarray:
    """Quantise to 8 bits and back, exactly what writing and re-reading a PNG does to ``img``."""
    return _to_uint8(np.asarray(img, dtype=np.float64)).astype(np.float32) / np.float32(255.0)
