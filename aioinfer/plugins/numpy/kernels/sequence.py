"""Sequence ops (a sequence is a list of arrays) and optionals (an empty optional is None)."""

from __future__ import annotations

import numpy as np

from ..registry import register


def _position(position, length: int, default: int) -> int:
    if position is None:
        return default
    pos = int(np.asarray(position).reshape(-1)[0])
    return pos + length if pos < 0 else pos


@register("SequenceEmpty", since=11)
def sequence_empty(*, dtype=None):
    return []


@register("SequenceConstruct", since=11)
def sequence_construct(*inputs):
    return list(inputs)


@register("SequenceAt", since=11)
def sequence_at(input_sequence, position):
    return input_sequence[int(np.asarray(position).reshape(-1)[0])]


@register("SequenceInsert", since=11)
def sequence_insert(input_sequence, tensor, position=None):
    out = list(input_sequence)
    out.insert(_position(position, len(out), len(out)), tensor)
    return out


@register("SequenceErase", since=11)
def sequence_erase(input_sequence, position=None):
    out = list(input_sequence)
    del out[_position(position, len(out), len(out) - 1)]
    return out


@register("SequenceLength", since=11)
def sequence_length(input_sequence):
    return np.array(len(input_sequence), dtype=np.int64)


@register("SplitToSequence", since=11)
def split_to_sequence(input, split=None, *, axis=0, keepdims=1):
    dim = input.shape[axis]
    if split is None:
        parts = np.split(input, dim, axis=axis)
        return [np.squeeze(p, axis=axis) for p in parts] if not keepdims else parts
    split = np.asarray(split)
    if split.ndim == 0:
        bounds = np.arange(int(split), dim, int(split))
    else:
        bounds = np.cumsum(split.astype(np.int64))[:-1]
    return np.split(input, bounds, axis=axis)


@register("ConcatFromSequence", since=11)
def concat_from_sequence(input_sequence, *, axis, new_axis=0):
    if new_axis:
        return np.stack(input_sequence, axis=axis)
    return np.concatenate(input_sequence, axis=axis)


@register("SequenceMap", since=17)
def sequence_map(input_sequence, *args, body):
    """Run ``body`` on each element; extra sequences are zipped, extra tensors broadcast."""
    n_extra = len(args) - body.n_captured
    extra, captured = list(args[:n_extra]), list(args[n_extra:])
    results = []
    for i, item in enumerate(input_sequence):
        inputs = [item] + [a[i] if isinstance(a, list) else a for a in extra]
        results.append(body.run(inputs + captured))
    n_out = len(body.output_slots)
    return tuple([r[k] for r in results] for k in range(n_out))


@register("Optional", since=15)
def optional(input=None, *, type=None):
    return input


@register("OptionalHasElement", since=15)
def optional_has_element(input=None):
    return np.array(input is not None)


@register("OptionalGetElement", since=15)
def optional_get_element(input):
    if input is None:
        raise ValueError("OptionalGetElement on an empty optional")
    return input
