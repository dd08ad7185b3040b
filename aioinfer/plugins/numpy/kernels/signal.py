"""Signal processing: DFT, STFT, window functions and the mel filter bank."""

from __future__ import annotations

import numpy as np
from onnx.helper import tensor_dtype_to_np_dtype

from ..registry import register

_COMPLEX = {np.dtype(np.float32): np.complex64, np.dtype(np.float64): np.complex128}


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """float32/float64 stay as they are; narrower floats are computed in float32."""
    return dtype if dtype in _COMPLEX else np.dtype(np.float32)


def _as_complex(x: np.ndarray) -> np.ndarray:
    """``[..., 1]`` (real) or ``[..., 2]`` (real, imag) -> a real or complex array ``[...]``."""
    x = x.astype(_compute_dtype(x.dtype), copy=False)
    if x.shape[-1] == 1:
        return x[..., 0]
    if x.flags.c_contiguous:
        return x.view(_COMPLEX[x.dtype])[..., 0]
    return x[..., 0] + 1j * x[..., 1]


def _as_pairs(c: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A complex array ``[...]`` -> ``[..., 2]`` (real, imag) of ``dtype``."""
    c = np.ascontiguousarray(c)
    pairs = c.view(c.real.dtype).reshape(c.shape + (2,))
    return pairs.astype(dtype, copy=False)


def _dft(x: np.ndarray, length: int | None, axis: int, inverse: int, onesided: int):
    axis = axis % x.ndim
    if axis == x.ndim - 1:
        raise ValueError("DFT axis must not be the last (real/imag) dimension")
    sig = _as_complex(x)
    if inverse and onesided:
        n = int(length) if length is not None else 2 * (sig.shape[axis] - 1)
        return np.fft.irfft(sig, n=n, axis=axis)[..., None].astype(x.dtype, copy=False)
    n = int(length) if length is not None else sig.shape[axis]
    if inverse:
        out = np.fft.ifft(sig, n=n, axis=axis)
    elif onesided:
        if np.iscomplexobj(sig):
            out = np.fft.fft(sig, n=n, axis=axis)
            out = out[(slice(None),) * axis + (slice(0, n // 2 + 1),)]
        else:
            out = np.fft.rfft(sig, n=n, axis=axis)
    else:
        out = np.fft.fft(sig, n=n, axis=axis)
    return _as_pairs(out, x.dtype)


@register("DFT", since=17)
def dft_17(x, dft_length=None, *, axis=1, inverse=0, onesided=0):
    length = None if dft_length is None else int(dft_length)
    return _dft(x, length, axis, inverse, onesided)


@register("DFT", since=20)
def dft_20(x, dft_length=None, axis=None, *, inverse=0, onesided=0):
    length = None if dft_length is None else int(dft_length)
    return _dft(x, length, -2 if axis is None else int(axis), inverse, onesided)


@register("STFT", since=17)
def stft(signal, frame_step, window=None, frame_length=None, *, onesided=1):
    """Frames ``signal [batch, length, 1|2]`` and returns ``[batch, frames, bins, 2]``."""
    if frame_length is None:
        frame_length = signal.shape[-2] if window is None else window.shape[0]
    frame_length, step = int(frame_length), int(frame_step)
    sig = _as_complex(signal)  # [batch, length]
    frames = np.lib.stride_tricks.sliding_window_view(sig, frame_length, axis=-1)[:, ::step]
    if window is not None:
        frames = frames * window.astype(sig.real.dtype, copy=False)
    if onesided and not np.iscomplexobj(frames):
        out = np.fft.rfft(frames, axis=-1)
    else:
        out = np.fft.fft(frames, axis=-1)
        if onesided:
            out = out[..., : frame_length // 2 + 1]
    return _as_pairs(out, signal.dtype)


def _window(size, periodic: int, output_datatype: int, coeffs: tuple[float, ...]) -> np.ndarray:
    """Generalised cosine window: ``sum_k (-1)^k a_k cos(2 pi k n / N)``."""
    size = int(size)
    denom = size if periodic else size - 1
    phase = np.arange(size, dtype=np.float64) * (2 * np.pi / denom) if denom else np.zeros(size)
    out = np.full(size, coeffs[0])
    for k, a in enumerate(coeffs[1:], start=1):
        out += (-1) ** k * a * np.cos(k * phase)
    return out.astype(tensor_dtype_to_np_dtype(output_datatype))


@register("HannWindow", since=17)
def hann_window(size, *, periodic=1, output_datatype=1):
    return _window(size, periodic, output_datatype, (0.5, 0.5))


@register("HammingWindow", since=17)
def hamming_window(size, *, periodic=1, output_datatype=1):
    alpha = 25.0 / 46.0
    return _window(size, periodic, output_datatype, (alpha, 1.0 - alpha))


@register("BlackmanWindow", since=17)
def blackman_window(size, *, periodic=1, output_datatype=1):
    return _window(size, periodic, output_datatype, (0.42, 0.5, 0.08))


@register("MelWeightMatrix", since=17)
def mel_weight_matrix(
    num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz,
    *, output_datatype=1,
):
    """Triangular filters ``[dft_length // 2 + 1, num_mel_bins]`` evenly spaced in mel."""
    n_mel, n_fft = int(num_mel_bins), int(dft_length)
    low = 2595 * np.log1p(lower_edge_hertz / 700) / np.log(10)
    high = 2595 * np.log1p(upper_edge_hertz / 700) / np.log(10)
    points = np.arange(0, n_mel + 2)
    hz = 700 * np.expm1((points * ((high - low) / points.shape[0]) + low) / 2595 * np.log(10))
    bins = (((n_fft + 1) * hz) // sample_rate).astype(np.int64)
    lo, mid, hi = bins[:-2], bins[1:-1], bins[2:]
    j = np.arange(n_fft // 2 + 1)[:, None]
    rise = np.where(mid > lo, (j - lo) / np.maximum(mid - lo, 1), (j == mid).astype(float))
    fall = (hi - j) / np.maximum(hi - mid, 1)
    out = np.where((j >= mid) & (j < hi), fall, np.where((j >= lo) & (j <= mid), rise, 0.0))
    return out.astype(tensor_dtype_to_np_dtype(output_datatype))
