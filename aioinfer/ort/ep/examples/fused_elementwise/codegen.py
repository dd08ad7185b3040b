"""One fused group as one loop nest: the numba kernel source, its on-disk cache, and the
NumPy fallback.

A group's nodes all make values of one static shape ``S`` (the output); each operand (a
runtime input, or a constant that is not a scalar) broadcasts to ``S``. The output's
dimensions are collapsed where every operand agrees (all of them full, or each of them
broadcast the same way), so a chain over ``[1, 512, 768]`` with a ``[768]`` bias is two loops,
512 x 768, and one without broadcasting is one loop over the elements. Extents and strides are
literals in the source. Each element is read once, carried through every node in a local and
written once: one pass over memory instead of one pass and one temporary per op.

The source is made from op types (a fixed table), float constants and shapes only: no node or
value name of the model reaches it (values are ``v0, v1, ...``). It is compiled by numba
(``nogil``: two streams run kernels in parallel; ``error_model="numpy"``: division by zero
gives inf/NaN as ONNX does) with ``cache=True``: the source is written to
``$AIOINFER_CACHE_DIR/ep_fused_elementwise/k_<hash>.py`` (default
``~/.cache/aioinfer/...``) so that numba can key its cache on a file, and a later process
loads the compiled kernel instead of compiling it (the text executed is always the one made
here, never the file read back). Where that folder cannot be written, the kernel is compiled
without the disk cache.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import pathlib
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

ScalarOp = Callable[..., str]


def literal(value: float) -> str:
    """A float32 constant as numba source: NaN and infinities too (``repr`` gives ``nan`` /
    ``inf``, which are not names in the kernel's module)."""
    v = float(np.float32(value))
    if math.isnan(v):
        return "np.float32(np.nan)"
    if math.isinf(v):
        return "np.float32(np.inf)" if v > 0 else "np.float32(-np.inf)"
    return f"np.float32({v!r})"


def attr(node: onnx.NodeProto, name: str, default: float | None) -> float | None:
    for a in node.attribute:
        if a.name == name:
            return float(onnx.helper.get_attribute_value(a))
    return default


def num(node: onnx.NodeProto, name: str, default: float) -> float:
    """A float attribute of ``node``, ``default`` when absent."""
    value = attr(node, name, default)
    return default if value is None else value


UNARY: dict[str, str] = {
    "Relu": "(ZERO if {0} < ZERO else {0})", "Sigmoid": "(ONE / (ONE + exp1(-{0})))",
    "Tanh": "tanh1({0})", "Exp": "exp1({0})", "Log": "np.log({0})", "Sqrt": "np.sqrt({0})",
    "Abs": "abs({0})", "Neg": "(-{0})", "Reciprocal": "(ONE / {0})", "Erf": "erf1({0})",
    "Softplus": "np.log(ONE + exp1({0}))", "Identity": "{0}"}
BINARY: dict[str, str] = {
    "Add": "({0} + {1})", "Sub": "({0} - {1})", "Mul": "({0} * {1})", "Div": "({0} / {1})",
    "Max": "max1({0}, {1})", "Min": "min1({0}, {1})", "Pow": "np.float32(np.power({0}, {1}))"}
OTHER = ("Clip", "LeakyRelu", "HardSigmoid", "Elu")
SUPPORTED = frozenset(UNARY) | frozenset(BINARY) | frozenset(OTHER)
_POW = {1.0: "{0}", 2.0: "({0} * {0})", 3.0: "({0} * {0} * {0})", 0.5: "np.sqrt({0})",
        -1.0: "(ONE / {0})"}


@dataclass
class Group:
    """A fused group: operands (runtime inputs, then constant arrays), scalar constants,
    nodes in order, outputs, and the shape every node makes."""

    inputs: list[tuple[str, tuple[int, ...]]]
    arrays: list[tuple[str, np.ndarray]]
    scalars: dict[str, float]
    nodes: list[onnx.NodeProto]
    outputs: list[str]
    shape: tuple[int, ...]

    def operand_shapes(self) -> list[tuple[int, ...]]:
        return [s for _, s in self.inputs] + [a.shape for _, a in self.arrays]


def collapse(shape: Sequence[int], operands: Sequence[Sequence[int]]
             ) -> tuple[list[int], list[list[int]]]:
    """The loop extents over ``shape`` and each operand's element stride per loop (0 where
    it broadcasts), adjacent dimensions merged where every operand treats them alike."""
    rank = len(shape)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in operands]
    dims: list[int] = []
    patterns: list[tuple[bool, ...]] = []
    for d in range(rank):
        if shape[d] == 1:
            continue
        pattern = tuple(p[d] == shape[d] for p in padded)
        if dims and patterns[-1] == pattern:
            dims[-1] *= shape[d]
        else:
            dims.append(shape[d])
            patterns.append(pattern)
    if not dims:
        dims, patterns = [1], [tuple(True for _ in padded)]
    strides = []
    for k in range(len(padded)):
        step, row = 1, [0] * len(dims)
        for d in reversed(range(len(dims))):
            if patterns[d][k]:
                row[d] = step
                step *= dims[d]
        strides.append(row)
    return dims, strides


def _scalar_expr(node: onnx.NodeProto, ins: list[str], const: Callable[[float], str],
                 scalars: Mapping[str, float]) -> str:
    op = node.op_type
    if op == "Pow" and node.input[1] in scalars and scalars[node.input[1]] in _POW:
        return _POW[scalars[node.input[1]]].format(ins[0])
    if op in BINARY:
        return BINARY[op].format(*ins)
    if op in UNARY:
        return UNARY[op].format(ins[0])
    if op == "LeakyRelu":
        return f"({ins[0]} * {const(num(node, 'alpha', 0.01))} if {ins[0]} < ZERO " \
               f"else {ins[0]})"
    if op == "Elu":
        scale = const(num(node, "alpha", 1.0))
        return f"({scale} * (exp1({ins[0]}) - ONE) if {ins[0]} < ZERO else {ins[0]})"
    if op == "HardSigmoid":
        alpha, beta = num(node, "alpha", 0.2), num(node, "beta", 0.5)
        return f"min1(max1({const(alpha)} * {ins[0]} + {const(beta)}, ZERO), ONE)"
    if op == "Clip":
        lo, hi = clip_bounds(node, scalars)
        value: str = ins[0]
        if lo is not None:
            value = f"({const(lo)} if {value} < {const(lo)} else {value})"
        if hi is not None:
            value = f"({const(hi)} if {value} > {const(hi)} else {value})"
        return value
    raise ValueError(f"fused_elementwise: no expression for {op}")


def clip_bounds(node: onnx.NodeProto, scalars: Mapping[str, float]
                ) -> tuple[float | None, float | None]:
    """Clip's bounds: the attributes (opset < 11) or the constant inputs (``None``: absent)."""
    if any(a.name in ("min", "max") for a in node.attribute):
        return attr(node, "min", None), attr(node, "max", None)
    bounds: list[float | None] = []
    for k in (1, 2):
        name = node.input[k] if len(node.input) > k else ""
        bounds.append(scalars[name] if name else None)
    return bounds[0], bounds[1]


def source(group: Group) -> str:
    """The numba module of ``group``: ``kernel(a0.., y0..)`` over flat float32 arrays."""
    shapes = group.operand_shapes()
    dims, strides = collapse(group.shape, [*shapes, group.shape])
    n_in = len(shapes)
    consts: dict[str, str] = {}

    def const(value: float) -> str:
        text = literal(value)
        return consts.setdefault(text, f"K{len(consts)}")

    local: dict[str, str] = {}
    for name, value in group.scalars.items():
        local[name] = const(value)
    names = [n for n, _ in group.inputs] + [n for n, _ in group.arrays]
    args = [f"a{k}" for k in range(n_in)] + [f"y{k}" for k in range(len(group.outputs))]
    body: list[str] = []
    indent = "    "
    index = ["0"] * (n_in + 1)  # each operand's index, then the output's, so far
    for level, extent in enumerate(dims):
        body.append(f"{indent}for i{level} in range({extent}):")
        indent += "    "
        last = level == len(dims) - 1
        for k in range(n_in + 1):
            step = strides[k][level]
            if step == 0:
                continue
            term = f"i{level}" if step == 1 else f"i{level} * {step}"
            expr = term if index[k] == "0" else f"{index[k]} + {term}"
            if last:
                index[k] = expr
            else:
                body.append(f"{indent}p{k}_{level} = {expr}")
                index[k] = f"p{k}_{level}"
    for k, name in enumerate(names):
        local[name] = f"v{len(local)}"
        body.append(f"{indent}{local[name]} = a{k}[{index[k]}]")
    for node in group.nodes:
        ins = [local[i] for i in node.input if i]
        if node.op_type == "Clip":
            ins = ins[:1]
        expr = _scalar_expr(node, ins, const, group.scalars)
        local[node.output[0]] = f"v{len(local)}"
        body.append(f"{indent}{local[node.output[0]]} = {expr}")
    for k, name in enumerate(group.outputs):
        body.append(f"{indent}y{k}[{index[n_in]}] = {local[name]}")
    head = [
        "# generated by aioinfer.ort.ep.examples.fused_elementwise.codegen",
        "import numba",
        "import numpy as np",
        "from aioinfer.ort.ep.examples.fused_elementwise.math32 import (erf1, exp1, max1, min1,"
        " tanh1)",
        "",
        "ZERO = np.float32(0.0)",
        "ONE = np.float32(1.0)",
        *(f"{name} = {text}" for text, name in consts.items()),
        "_RO = numba.types.Array(numba.float32, 1, 'C', readonly=True)",
        "_RW = numba.types.Array(numba.float32, 1, 'C')",
        "",
        "",
        f"@numba.njit(numba.void({', '.join(['_RO'] * n_in + ['_RW'] * len(group.outputs))}),"
        " nogil=True, cache=True, error_model='numpy', boundscheck=False)",
        f"def kernel({', '.join(args)}):",
    ]
    return "\n".join([*head, *body]) + "\n"


def cache_dir() -> pathlib.Path:
    """Where the kernels' source files (and numba's cache beside them) are kept."""
    root = os.environ.get("AIOINFER_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "aioinfer")
    return pathlib.Path(root) / "ep_fused_elementwise"


@functools.lru_cache(maxsize=1)
def _stamp() -> str:
    """What a cached kernel depends on besides its own source: the inlined helpers, numba."""
    import numba

    helpers = pathlib.Path(__file__).with_name("math32.py").read_bytes()
    return hashlib.sha256(helpers + numba.__version__.encode()).hexdigest()[:16]


_KERNELS: dict[str, Callable[..., None]] = {}
_LOCK = threading.Lock()


def _write(path: pathlib.Path, text: str) -> bool:
    """``text`` at ``path`` (atomically; kept when it is already there); False if the folder
    cannot be written."""
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return True
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".k_", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        return True
    except OSError:
        return False


def kernel(text: str) -> Callable[..., None]:
    """The compiled ``kernel`` of a module made by :func:`source` (one per source text in the
    process, compiled or loaded from numba's cache when first asked for)."""
    text = f"# helpers {_stamp()}\n{text}"
    with _LOCK:
        found = _KERNELS.get(text)
        if found is not None:
            return found
        key = hashlib.sha256(text.encode()).hexdigest()[:24]
        path = cache_dir() / f"k_{key}.py"
        if _write(path, text):
            filename = str(path)
        else:  # no disk cache: numba compiles in every process
            filename = f"<fused_elementwise {key}>"
            text = text.replace("cache=True", "cache=False")
        # a module numba can find again by name when it loads the kernel from its cache
        module = types.ModuleType(f"aioinfer_fused_elementwise_{key}")
        module.__file__ = filename
        sys.modules[module.__name__] = module
        # the source made by source() above from op types, floats and shapes (module doc)
        exec(compile(text, filename, "exec"), module.__dict__)
        found = _KERNELS[text] = module.kernel
        return found


# --- the NumPy fallback ---------------------------------------------------------------------

def _np_erf(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    from aioinfer.plugins.numpy.kernels.elementwise import erf

    out[...] = erf(x)
    return out


def _np_unary(op: str, x: Any, out: np.ndarray) -> Any:
    if op == "Relu":
        return np.maximum(x, np.float32(0), out=out)
    if op == "Sigmoid":
        np.negative(x, out=out)
        np.exp(out, out=out)
        out += 1
        return np.divide(1, out, out=out)
    if op == "Softplus":
        np.exp(x, out=out)
        return np.log1p(out, out=out)
    if op == "Erf":
        return _np_erf(np.asarray(x, np.float32), out)
    if op == "Identity":
        out[...] = x
        return out
    ufunc = {"Tanh": np.tanh, "Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt, "Abs": np.abs,
             "Neg": np.negative, "Reciprocal": np.reciprocal}[op]
    return ufunc(x, out=out)


_NP_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
              "Max": np.maximum, "Min": np.minimum, "Pow": np.power}


def run_numpy(group: Group, values: dict[str, Any]) -> list[np.ndarray]:
    """The group op by op with NumPy ufuncs (no numba), one buffer per value."""
    f32 = np.float32
    with np.errstate(all="ignore"):
        for node in group.nodes:
            out = np.empty(group.shape, f32)
            args = [values[i] if i in values else f32(group.scalars[i]) for i in node.input
                    if i]
            op = node.op_type
            if op in _NP_BINARY:
                _NP_BINARY[op](args[0], args[1], out=out)
            elif op == "Clip":
                lo, hi = clip_bounds(node, group.scalars)
                np.clip(args[0], -np.inf if lo is None else f32(lo),
                        np.inf if hi is None else f32(hi), out=out)
            elif op == "LeakyRelu":
                alpha = f32(num(node, "alpha", 0.01))
                np.multiply(args[0], alpha, out=out)
                np.copyto(out, np.broadcast_to(args[0], out.shape), where=~(args[0] < 0))
            elif op == "Elu":
                alpha = f32(num(node, "alpha", 1.0))
                np.expm1(args[0], out=out)
                out *= alpha
                np.copyto(out, np.broadcast_to(args[0], out.shape), where=~(args[0] < 0))
            elif op == "HardSigmoid":
                np.multiply(args[0], f32(num(node, "alpha", 0.2)), out=out)
                out += f32(num(node, "beta", 0.5))
                np.clip(out, f32(0), f32(1), out=out)
            else:
                _np_unary(op, args[0], out)
            values[node.output[0]] = out
    return [values[o] for o in group.outputs]
