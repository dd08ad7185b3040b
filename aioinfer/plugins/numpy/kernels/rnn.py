"""Recurrent layers: RNN, GRU, LSTM (all directions, layouts, activations, sequence_lens, clip).

The input projection ``X @ W^T + Wb`` of every time step is one GEMM up front; the time loop
only does the recurrent ``H @ R^T`` product and the gate arithmetic. Reverse directions with
``sequence_lens`` read and write each batch row through a per-row time permutation, so that
every row runs its own valid steps backwards from its own last step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..registry import register

Act = Callable[[np.ndarray], np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


_ACTS: dict[str, tuple[int, tuple[float, ...], Callable[..., np.ndarray]]] = {
    # name: (number of params, defaults, fn(x, *params))
    "relu": (0, (), lambda x: np.maximum(x, 0)),
    "tanh": (0, (), np.tanh),
    "sigmoid": (0, (), _sigmoid),
    "softsign": (0, (), lambda x: x / (1 + np.abs(x))),
    "softplus": (0, (), lambda x: np.logaddexp(0, x)),
    "affine": (2, (1.0, 0.0), lambda x, a, b: a * x + b),
    "leakyrelu": (1, (0.01,), lambda x, a: np.where(x >= 0, x, a * x)),
    "thresholdedrelu": (1, (1.0,), lambda x, a: np.where(x > a, x, 0)),
    "scaledtanh": (2, (1.0, 1.0), lambda x, a, b: a * np.tanh(b * x)),
    "hardsigmoid": (2, (0.2, 0.5), lambda x, a, b: np.clip(a * x + b, 0, 1)),
    "elu": (1, (1.0,), lambda x, a: np.where(x >= 0, x, a * (np.exp(x) - 1))),
}


def _activations(
    names: Sequence[str] | None, defaults: Sequence[str], dirs: int,
    alpha: Sequence[float] | None, beta: Sequence[float] | None,
) -> list[list[Act]]:
    """One list of activation callables per direction; alpha/beta are consumed in order."""
    names = list(names) if names else list(defaults) * dirs
    if len(names) == len(defaults) and dirs == 2:
        names = names * 2
    alphas, betas = list(alpha or []), list(beta or [])
    acts: list[Act] = []
    for name in names:
        n, dflt, fn = _ACTS[name.lower()]
        params = []
        if n >= 1:
            params.append(alphas.pop(0) if alphas else dflt[0])
        if n >= 2:
            params.append(betas.pop(0) if betas else dflt[1])
        acts.append((lambda f, p: lambda x: f(x, *p))(fn, params) if params else fn)
    k = len(defaults)
    return [acts[d * k:(d + 1) * k] for d in range(dirs)]


def _time_index(seq: int, lens: np.ndarray | None, reverse: bool) -> np.ndarray | None:
    """idx[t, b]: the input time read at step t for row b (None: no per-row permutation)."""
    if not reverse or lens is None:
        return None
    t = np.arange(seq)[:, None]
    lens = lens.reshape(1, -1)
    return np.where(t < lens, lens - 1 - t, t)


def _run(
    cell: Callable[..., tuple[np.ndarray, ...]], gates: int, x, w, r, b, lens, states,
    direction: str, layout: int, acts, clip: float | None, extra: Sequence,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run ``cell`` over time for every direction. Returns Y (seq, dirs, batch, H), finals."""
    x = np.asarray(x)
    dtype = x.dtype
    work = dtype if dtype.char in "fd" else np.dtype(np.float32)
    if layout:
        x = x.swapaxes(0, 1)
    seq, batch, _ = x.shape
    dirs, hidden = w.shape[0], r.shape[-1]
    lens = None if lens is None else np.asarray(lens).astype(np.int64).reshape(-1)
    if lens is not None and np.all(lens >= seq):
        lens = None
    y = np.zeros((seq, dirs, batch, hidden), work)
    finals: list[list[np.ndarray]] = []
    for d in range(dirs):
        reverse = direction == "reverse" or d == 1
        xw = np.matmul(x.astype(work, copy=False), w[d].astype(work).T)
        bias = None if b is None else b[d].astype(work)
        if bias is not None:
            xw += bias[: gates * hidden]
        idx = _time_index(seq, lens, reverse)
        cols = np.arange(batch)
        if idx is not None:
            xw = xw[idx, cols]
        elif reverse:
            xw = xw[::-1]
        st = [s[d].astype(work) for s in states]
        rt = np.ascontiguousarray(r[d].astype(work).T)
        rb = None if bias is None else bias[gates * hidden:]
        ex = [e[d].astype(work) if e is not None else None for e in extra]
        ys = np.empty((seq, batch, hidden), work)
        for t in range(seq):
            new = list(cell(xw[t], st, rt, rb, acts[d], clip, *ex))
            if lens is not None:
                live = (t < lens)[:, None]
                new = [np.where(live, n, s) for n, s in zip(new, st, strict=True)]
                ys[t] = np.where(live, new[0], 0)
            else:
                ys[t] = new[0]
            st = new
        if idx is not None:
            y[idx, d, cols] = ys
        else:
            y[:, d] = ys[::-1] if reverse else ys
        finals.append(st)
    return y.astype(dtype, copy=False), [np.stack(f).astype(dtype, copy=False)
                                         for f in zip(*finals, strict=True)]


def _clip(v: np.ndarray, clip: float | None) -> np.ndarray:
    return v if clip is None else np.clip(v, -clip, clip)


def _rnn_cell(xw, st, rt, rb, acts, clip):
    pre = xw + st[0] @ rt
    if rb is not None:
        pre += rb
    return (acts[0](_clip(pre, clip)),)


def _gru_cell(xw, st, rt, rb, acts, clip, lbr):
    f, g = acts
    h = st[0]
    n = h.shape[1]
    hr = h @ rt[:, : 2 * n]
    if rb is not None:
        hr += rb[: 2 * n]
    z = f(_clip(xw[:, :n] + hr[:, :n], clip))
    r = f(_clip(xw[:, n: 2 * n] + hr[:, n:], clip))
    if lbr:
        hh = h @ rt[:, 2 * n:]
        if rb is not None:
            hh += rb[2 * n:]
        cand = xw[:, 2 * n:] + r * hh
    else:
        cand = xw[:, 2 * n:] + (r * h) @ rt[:, 2 * n:]
        if rb is not None:
            cand += rb[2 * n:]
    c = g(_clip(cand, clip))
    return ((1 - z) * c + z * h,)


def _lstm_cell(xw, st, rt, rb, acts, clip, p, input_forget):
    f, g, hact = acts
    h, c = st
    n = h.shape[1]
    pre = xw + h @ rt
    if rb is not None:
        pre += rb
    pi, po, pf = (0, 0, 0) if p is None else (p[:n], p[n: 2 * n], p[2 * n:])
    i = f(_clip(pre[:, :n] + pi * c, clip))
    fg = 1 - i if input_forget else f(_clip(pre[:, 2 * n: 3 * n] + pf * c, clip))
    cand = g(_clip(pre[:, 3 * n:], clip))
    c_new = fg * c + i * cand
    o = f(_clip(pre[:, n: 2 * n] + po * c_new, clip))
    return o * hact(c_new), c_new


def _initial(h0, dirs: int, batch: int, hidden: int, layout: int, dtype) -> np.ndarray:
    if h0 is None:
        return np.zeros((dirs, batch, hidden), dtype)
    h0 = np.asarray(h0)
    return h0.swapaxes(0, 1) if layout else h0


def _outputs(y, finals, layout: int, n_outputs: int):
    if layout:
        y = y.transpose(2, 0, 1, 3)
        finals = [f.swapaxes(0, 1) for f in finals]
    return (y, *finals)[:n_outputs] if n_outputs > 1 else y


def _geometry(x, w, r, layout: int) -> tuple[int, int, int]:
    batch = np.shape(x)[0 if layout else 1]
    return np.shape(w)[0], batch, np.shape(r)[-1]


@register("RNN", since=1)
def rnn(
    x, w, r, b=None, sequence_lens=None, initial_h=None, *, activation_alpha=None,
    activation_beta=None, activations=None, clip=None, direction="forward", hidden_size=None,
    layout=0, output_sequence=0, n_outputs=1,
):
    dirs, batch, hidden = _geometry(x, w, r, layout)
    h0 = _initial(initial_h, dirs, batch, hidden, layout, np.asarray(x).dtype)
    acts = _activations(activations, ["Tanh"], dirs, activation_alpha, activation_beta)
    y, fin = _run(_rnn_cell, 1, x, w, r, b, sequence_lens, [h0], direction, layout, acts,
                  clip, ())
    return _outputs(y, fin, layout, n_outputs)


@register("GRU", since=1)
def gru(
    x, w, r, b=None, sequence_lens=None, initial_h=None, *, activation_alpha=None,
    activation_beta=None, activations=None, clip=None, direction="forward", hidden_size=None,
    layout=0, linear_before_reset=0, output_sequence=0, n_outputs=1,
):
    dirs, batch, hidden = _geometry(x, w, r, layout)
    h0 = _initial(initial_h, dirs, batch, hidden, layout, np.asarray(x).dtype)
    acts = _activations(activations, ["Sigmoid", "Tanh"], dirs, activation_alpha,
                        activation_beta)
    cell = lambda *a: _gru_cell(*a, linear_before_reset)  # noqa: E731
    y, fin = _run(cell, 3, x, w, r, b, sequence_lens, [h0], direction, layout, acts, clip, ())
    return _outputs(y, fin, layout, n_outputs)


@register("LSTM", since=1)
def lstm(
    x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None, p=None, *,
    activation_alpha=None, activation_beta=None, activations=None, clip=None,
    direction="forward", hidden_size=None, input_forget=0, layout=0, output_sequence=0,
    n_outputs=1,
):
    dirs, batch, hidden = _geometry(x, w, r, layout)
    dtype = np.asarray(x).dtype
    h0 = _initial(initial_h, dirs, batch, hidden, layout, dtype)
    c0 = _initial(initial_c, dirs, batch, hidden, layout, dtype)
    acts = _activations(activations, ["Sigmoid", "Tanh", "Tanh"], dirs, activation_alpha,
                        activation_beta)
    cell = lambda *a: _lstm_cell(*a[:6], a[6], input_forget)  # noqa: E731
    y, fin = _run(cell, 4, x, w, r, b, sequence_lens, [h0, c0], direction, layout, acts,
                  clip, (p,))
    return _outputs(y, fin, layout, n_outputs)
