"""Train the demo's digit classifier and write ``digits_cnn.onnx`` (NumPy only, plus
scikit-learn for its bundled digits: ``pip install -e ".[train]"``).

    python -m aioinfer.demo.train            # writes aioinfer/demo/data/{digits_cnn.onnx,...}

Data: ``sklearn.datasets.load_digits`` (1797 8x8 digits, UCI, CC BY 4.0) split 80/20,
stratified, seed 0. The 20% held out are written to ``held_out_digits.npz``: the demo's sample
video is rendered from them and they are never trained on. Training frames are rendered from
the other 80% by :mod:`aioinfer.demo.render` at random placements, then resized to the model's
input exactly as the demo's preprocessing does (bilinear, half-pixel). The network
(:mod:`aioinfer.demo.graph`) is trained with Adam on softmax cross-entropy, with backward
passes written out in NumPy, and exported with ``onnx.helper`` from the learned weights.
The script checks the exported model on aioinfer against its own forward pass and reports
the held-out accuracy on freshly rendered frames.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .graph import CLASSES, CONVS, INPUT_SIZE, POOLED, build_graph
from .render import random_placement, render, resize_bilinear

DATA = Path(__file__).resolve().parent / "data"
WIDTHS = (16, 32, 64, 64)


# -- data -------------------------------------------------------------------------------------
def split_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 ``[n, 8, 8]`` (0..16): train and held-out parts."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.int64), test_size=0.2, stratify=digits.target,
        random_state=seed)
    return x_train, y_train, x_test, y_test


def render_set(digits: np.ndarray, labels: np.ndarray, copies: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``copies`` random frames per digit, as the model sees them: ``[n, 32, 32, 3]`` in 0..1."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(digits) * copies, INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    for k in range(len(out)):
        frame = render(digits[k % len(digits)], random_placement(rng), rng)
        out[k] = resize_bilinear(frame.astype(np.float32), INPUT_SIZE, INPUT_SIZE) / 255.0
    return out, np.tile(labels, copies)


# -- layers (NHWC, forward and backward) ------------------------------------------------------
def _im2col(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return np.concatenate([padded[:, dy:dy + h, dx:dx + w] for dy in range(3)
                           for dx in range(3)], axis=-1)


def _col2im(dcols: np.ndarray, c: int) -> np.ndarray:
    n, h, w, _ = dcols.shape
    out = np.zeros((n, h + 2, w + 2, c), np.float32)
    for k in range(9):
        dy, dx = divmod(k, 3)
        out[:, dy:dy + h, dx:dx + w] += dcols[..., k * c:(k + 1) * c]
    return out[:, 1:-1, 1:-1]


class Net:
    """The network of :mod:`.graph` with its parameters; ``forward`` keeps what ``backward``
    needs."""

    def __init__(self, widths: Sequence[int] = WIDTHS, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        cin = 3
        for i, cout in enumerate(widths):
            fan_in = 9 * cin
            self.params[f"w{i}"] = (rng.standard_normal((fan_in, cout)) *
                                    np.sqrt(2 / fan_in)).astype(np.float32)
            self.params[f"b{i}"] = np.zeros(cout, np.float32)
            cin = cout
        self.params["fw"] = (rng.standard_normal((cin, CLASSES)) *
                             np.sqrt(1 / cin)).astype(np.float32)
        self.params["fb"] = np.zeros(CLASSES, np.float32)
        self._cache: list[tuple[np.ndarray, ...]] = []

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._cache = []
        for i in range(CONVS):
            cols = _im2col(x)
            y = cols @ self.params[f"w{i}"] + self.params[f"b{i}"]
            relu = y > 0
            y = y * relu
            entry: tuple[np.ndarray, ...] = (cols, relu)
            if i < POOLED:
                n, h, w, c = y.shape
                blocks = y.reshape(n, h // 2, 2, w // 2, 2, c)
                pooled = blocks.max(axis=(2, 4))
                mask = blocks == pooled[:, :, None, :, None]
                entry = (cols, relu, mask)
                y = pooled
            self._cache.append(entry)
            x = y
        self._features_shape = x.shape
        features = x.mean(axis=(1, 2))
        self._features = features
        return features @ self.params["fw"] + self.params["fb"]

    def backward(self, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        grads = {"fw": self._features.T @ dlogits, "fb": dlogits.sum(0)}
        n, h, w, c = self._features_shape
        dx = np.broadcast_to((dlogits @ self.params["fw"].T)[:, None, None, :] / (h * w),
                             (n, h, w, c))
        for i in reversed(range(CONVS)):
            entry = self._cache[i]
            cols, relu = entry[0], entry[1]
            if i < POOLED:
                mask = entry[2]
                dx = (mask * dx[:, :, None, :, None]).reshape(relu.shape)
            dy = dx * relu
            flat = dy.reshape(-1, dy.shape[-1])
            grads[f"w{i}"] = cols.reshape(-1, cols.shape[-1]).T @ flat
            grads[f"b{i}"] = flat.sum(0)
            if i > 0:
                dx = _col2im(dy @ self.params[f"w{i}"].T, cols.shape[-1] // 9)
        return grads

    def onnx_weights(self) -> dict[str, np.ndarray]:
        """The parameters in ONNX layout (Conv ``[out, in, kh, kw]``, Gemm ``[out, in]``)."""
        out: dict[str, np.ndarray] = {}
        for i in range(CONVS):
            w = self.params[f"w{i}"]
            cin = w.shape[0] // 9
            out[f"conv{i}.weight"] = w.reshape(3, 3, cin, -1).transpose(3, 2, 0, 1).copy()
            out[f"conv{i}.bias"] = self.params[f"b{i}"].copy()
        out["fc.weight"] = self.params["fw"].T.copy()
        out["fc.bias"] = self.params["fb"].copy()
        return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def train(net: Net, x: np.ndarray, y: np.ndarray, *, epochs: int, batch: int = 64,
          lr: float = 2e-3, seed: int = 0, log=print) -> None:
    """Adam on softmax cross-entropy, the learning rate cosine-annealed to zero."""
    rng = np.random.default_rng(seed)
    m = {k: np.zeros_like(v) for k, v in net.params.items()}
    v = {k: np.zeros_like(p) for k, p in net.params.items()}
    steps = epochs * (len(x) // batch)
    t = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        loss_sum, correct, start = 0.0, 0, time.perf_counter()
        for b in range(len(x) // batch):
            idx = order[b * batch:(b + 1) * batch]
            probs = _softmax(net.forward(x[idx]))
            target = y[idx]
            loss_sum += float(-np.log(probs[np.arange(batch), target] + 1e-9).sum())
            correct += int((probs.argmax(1) == target).sum())
            dlogits = probs
            dlogits[np.arange(batch), target] -= 1
            grads = net.backward((dlogits / batch).astype(np.float32))
            t += 1
            rate = lr * 0.5 * (1 + np.cos(np.pi * t / steps))
            for key, g in grads.items():
                m[key] = 0.9 * m[key] + 0.1 * g
                v[key] = 0.999 * v[key] + 0.001 * g * g
                mhat = m[key] / (1 - 0.9 ** t)
                vhat = v[key] / (1 - 0.999 ** t)
                net.params[key] -= (rate * mhat / (np.sqrt(vhat) + 1e-8)).astype(np.float32)
        seen = (len(x) // batch) * batch
        log(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / seen:.4f}, train accuracy "
            f"{correct / seen:.4f} ({time.perf_counter() - start:.0f} s)")


def predict(net: Net, x: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([net.forward(x[k:k + batch]).argmax(1)
                           for k in range(0, len(x), batch)])


# -- command line -----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aioinfer.demo.train",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA, help="output folder")
    parser.add_argument("--copies", type=int, default=16, help="rendered frames per digit")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test = split_digits(args.seed)
    print(f"digits: {len(x_train)} train, {len(x_test)} held out", flush=True)
    x, y = render_set(x_train, y_train, args.copies, seed=args.seed + 1)
    xt, yt = render_set(x_test, y_test, 4, seed=args.seed + 2)
    net = Net(seed=args.seed)
    train(net, x, y, epochs=args.epochs, lr=args.lr, seed=args.seed,
          log=lambda line: print(line, flush=True))
    accuracy = float((predict(net, xt) == yt).mean())
    print(f"held-out accuracy on {len(xt)} rendered frames: {accuracy:.4f}", flush=True)

    import onnx

    from ..core import Core

    weights = net.onnx_weights()
    meta = {"aioinfer.demo.held_out_accuracy": f"{accuracy:.4f}",
            "aioinfer.demo.training": json.dumps({
                "data": "sklearn.datasets.load_digits, 80/20 stratified split, seed "
                        f"{args.seed}", "copies": args.copies, "epochs": args.epochs,
                "widths": list(WIDTHS)})}
    proto = build_graph(weights, doc="aioinfer.demo: digit classifier trained by "
                        "aioinfer/demo/train.py", metadata=meta)
    compiled = Core().compile_model(proto, "CPU")
    sample = xt[:64].transpose(0, 3, 1, 2).copy()
    ours = compiled(sample)[0]
    np.testing.assert_allclose(ours, _softmax(net.forward(xt[:64])), rtol=1e-3, atol=1e-5)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, args.out / "digits_cnn.onnx")
    np.savez_compressed(args.out / "held_out_digits.npz", images=x_test, labels=y_test)
    print(f"wrote {args.out / 'digits_cnn.onnx'} and {args.out / 'held_out_digits.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
