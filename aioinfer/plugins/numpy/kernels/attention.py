"""Scaled dot-product Attention (opset 23+: GQA/MQA, masks, causal, KV cache, windows, softcap)
and RotaryEmbedding."""

from __future__ import annotations

import numpy as np
from onnx.helper import tensor_dtype_to_np_dtype

from ..registry import register

_NEG_INF = -np.inf


def _work_dtype(dtype: np.dtype) -> np.dtype:
    """float32 for float16 / float32, float64 for float64; bfloat16 computes in bfloat16 (the
    spec's results are defined by its rounding at every step)."""
    if dtype == np.float64:
        return np.dtype(np.float64)
    return np.dtype(np.float32) if dtype.char in "efd" else dtype


def _split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """(B, S, H*D) -> (B, H, S, D) view."""
    b, s, hidden = x.shape
    return x.reshape(b, s, heads, hidden // heads).transpose(0, 2, 1, 3)


def _bias(
    mask: np.ndarray | None, batch: int, sq: int, sk: int, is_causal: int, offset,
    left: int, right: int, nonpad: np.ndarray | None, dtype: np.dtype,
) -> np.ndarray | None:
    """Additive attention bias (0 / -inf / float mask), broadcastable to (B, H, Sq, Sk).

    ``offset`` (scalar or per-batch array) places query ``i`` at absolute position
    ``i + offset`` for the causal frontier and the sliding window.
    """
    bias = None
    if mask is not None:
        mask = np.asarray(mask)
        pad = sk - mask.shape[-1]
        if mask.dtype == np.bool_:
            bias = np.where(mask, dtype.type(0), dtype.type(_NEG_INF))
        else:
            bias = mask.astype(dtype)
        if pad > 0:
            bias = np.pad(bias, [(0, 0)] * (bias.ndim - 1) + [(0, pad)],
                          constant_values=_NEG_INF)
    allowed = None
    j = np.arange(sk)
    pos = np.arange(sq)[:, None] + (np.reshape(offset, (-1, 1, 1, 1)) if np.ndim(offset)
                                    else int(offset))
    conds = []
    if is_causal:
        conds.append(j <= pos)
    if left >= 0:
        conds.append(pos - j <= left)
    if right >= 0:
        conds.append(j - pos <= right)
    if nonpad is not None:
        conds.append(j < np.asarray(nonpad).reshape(-1, 1, 1, 1))
    for c in conds:
        allowed = c if allowed is None else allowed & c
    if allowed is not None:
        base = dtype.type(0) if bias is None else bias
        bias = np.where(allowed, base, dtype.type(_NEG_INF))
    return bias


def _softmax_(s: np.ndarray) -> np.ndarray:
    """In-place softmax over the last axis; a row that is all -inf becomes all zeros."""
    m = s.max(axis=-1, keepdims=True)
    m[np.isneginf(m)] = 0
    s -= m
    np.exp(s, out=s)
    total = s.sum(axis=-1, keepdims=True)
    total[total == 0] = 1
    s /= total
    return s


def _attention(
    q, k, v, attn_mask, past_key, past_value, nonpad_kv_seqlen, *, is_causal, kv_num_heads,
    q_num_heads, qk_matmul_output_mode, scale, softcap, softmax_precision, left_window_size,
    right_window_size, n_outputs,
):
    q, k, v = np.asarray(q), np.asarray(k), np.asarray(v)
    dtype, rank3 = q.dtype, q.ndim == 3
    if rank3:
        q, k, v = (_split_heads(q, q_num_heads), _split_heads(k, kv_num_heads),
                   _split_heads(v, kv_num_heads))
    if past_key is not None:
        k = np.concatenate((past_key, k), axis=2)
        v = np.concatenate((past_value, v), axis=2)
    present_k, present_v = k, v
    b, hq, sq, d = q.shape
    hk, sk = k.shape[1], k.shape[2]
    work = _work_dtype(dtype)
    if softmax_precision and tensor_dtype_to_np_dtype(softmax_precision) == np.float64:
        work = np.dtype(np.float64)
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    rep = hq // hk
    # Grouped heads: query heads h*rep .. h*rep+rep-1 share kv head h (no K/V repeat).
    kt = k.astype(work, copy=False).swapaxes(-1, -2)
    if work.char in "fd":
        qg = q.astype(work) * work.type(scale)
    else:  # exotic floats: scale both sides by sqrt(scale), as the spec's graph does
        root = work.type(np.sqrt(scale))
        qg, kt = q * root, kt * root
    qg = qg.reshape(b, hk, rep * sq, d)
    scores = np.matmul(qg, kt).astype(work, copy=False).reshape(b, hq, sq, sk)
    if softcap and softcap > 0:
        scores /= softcap
        np.tanh(scores, out=scores)
        scores *= softcap
    qk_out = scores.copy() if n_outputs > 3 and qk_matmul_output_mode in (0, 1) else None
    offset = 0
    if past_key is not None:
        offset = past_key.shape[2]
    elif nonpad_kv_seqlen is not None:
        offset = np.asarray(nonpad_kv_seqlen).reshape(-1) - sq
    bias = _bias(attn_mask, b, sq, sk, is_causal, offset, left_window_size,
                 right_window_size, nonpad_kv_seqlen, work)
    if bias is not None:
        scores += bias
    if n_outputs > 3 and qk_matmul_output_mode == 2:
        qk_out = scores.copy()
    probs = _softmax_(scores)
    if bias is not None:
        masked = np.isneginf(bias.max(axis=-1, keepdims=True))
        if masked.any():
            probs = np.where(masked, work.type(0), probs)
    if qk_matmul_output_mode == 3:
        qk_out = probs
    pv = probs.reshape(b, hk, rep * sq, sk)
    y = np.matmul(pv, v.astype(work, copy=False)).astype(work, copy=False)
    y = y.reshape(b, hq, sq, -1)
    if rank3:
        y = y.transpose(0, 2, 1, 3).reshape(b, sq, -1)
    y = y.astype(dtype, copy=False)
    outs = (y, present_k, present_v,
            None if qk_out is None else qk_out.astype(dtype, copy=False))
    return outs[:n_outputs] if n_outputs > 1 else y


@register("Attention", since=23)
def attention_23(
    q, k, v, attn_mask=None, past_key=None, past_value=None, *, is_causal=0,
    kv_num_heads=None, q_num_heads=None, qk_matmul_output_mode=0, scale=None, softcap=0.0,
    softmax_precision=None, n_outputs=1,
):
    return _attention(q, k, v, attn_mask, past_key, past_value, None, is_causal=is_causal,
                      kv_num_heads=kv_num_heads, q_num_heads=q_num_heads,
                      qk_matmul_output_mode=qk_matmul_output_mode, scale=scale,
                      softcap=softcap, softmax_precision=softmax_precision,
                      left_window_size=-1, right_window_size=-1, n_outputs=n_outputs)


@register("Attention", since=24)
def attention_24(
    q, k, v, attn_mask=None, past_key=None, past_value=None, nonpad_kv_seqlen=None, *,
    is_causal=0, kv_num_heads=None, q_num_heads=None, qk_matmul_output_mode=0, scale=None,
    softcap=0.0, softmax_precision=None, n_outputs=1,
):
    return _attention(q, k, v, attn_mask, past_key, past_value, nonpad_kv_seqlen,
                      is_causal=is_causal, kv_num_heads=kv_num_heads,
                      q_num_heads=q_num_heads, qk_matmul_output_mode=qk_matmul_output_mode,
                      scale=scale, softcap=softcap, softmax_precision=softmax_precision,
                      left_window_size=-1, right_window_size=-1, n_outputs=n_outputs)


@register("Attention", since=25)
def attention_25(
    q, k, v, attn_mask=None, past_key=None, past_value=None, nonpad_kv_seqlen=None, *,
    is_causal=0, kv_num_heads=None, q_num_heads=None, qk_matmul_output_mode=0, scale=None,
    softcap=0.0, softmax_precision=None, left_window_size=-1, right_window_size=-1,
    n_outputs=1,
):
    return _attention(q, k, v, attn_mask, past_key, past_value, nonpad_kv_seqlen,
                      is_causal=is_causal, kv_num_heads=kv_num_heads,
                      q_num_heads=q_num_heads, qk_matmul_output_mode=qk_matmul_output_mode,
                      scale=scale, softcap=softcap, softmax_precision=softmax_precision,
                      left_window_size=left_window_size, right_window_size=right_window_size,
                      n_outputs=n_outputs)


@register("RotaryEmbedding", since=23)
def rotary_embedding(
    x, cos_cache, sin_cache, position_ids=None, *, interleaved=0, num_heads=0,
    rotary_embedding_dim=0,
):
    """Rotate the first ``rotary_embedding_dim`` features of each head by position angles."""
    x = np.asarray(x)
    if x.ndim == 3:  # (B, S, H*D) -> (B, S, H, D); caches broadcast as (B, S, 1, half)
        xs = x.reshape(x.shape[0], x.shape[1], num_heads, -1)
        head_axis = 2
    else:  # (B, H, S, D); caches broadcast as (B, 1, S, half)
        xs = x
        head_axis = 1
    dim = rotary_embedding_dim or xs.shape[-1]
    half = dim // 2
    cos, sin = np.asarray(cos_cache), np.asarray(sin_cache)
    if position_ids is not None:
        cos, sin = cos[position_ids], sin[position_ids]
    cos = np.expand_dims(cos[..., :half], head_axis).astype(x.dtype, copy=False)
    sin = np.expand_dims(sin[..., :half], head_axis).astype(x.dtype, copy=False)
    out = np.empty_like(xs)
    out[..., dim:] = xs[..., dim:]
    if interleaved:
        x1, x2 = xs[..., 0:dim:2], xs[..., 1:dim:2]
        o1, o2 = out[..., 0:dim:2], out[..., 1:dim:2]
    else:
        x1, x2 = xs[..., :half], xs[..., half:dim]
        o1, o2 = out[..., :half], out[..., half:dim]
    np.subtract(cos * x1, sin * x2, out=o1)
    np.add(sin * x1, cos * x2, out=o2)
    return out.reshape(x.shape)


def _heads4(x: np.ndarray, heads: int, work: np.dtype) -> np.ndarray:
    return _split_heads(np.asarray(x), heads).astype(work, copy=False)


@register("LinearAttention", since=27)
def linear_attention(
    query, key, value, past_state=None, decay=None, beta=None, *, chunk_size=64,
    kv_num_heads, q_num_heads, scale=0.0, update_rule="gated_delta",
):
    """Recurrent linear attention (linear / gated / delta / gated_delta) with GQA."""
    query = np.asarray(query)
    out_dtype = query.dtype
    work = _work_dtype(out_dtype)
    q = _heads4(query, q_num_heads, work)
    k, v = _heads4(key, kv_num_heads, work), _heads4(value, kv_num_heads, work)
    b, _, t, dk = q.shape
    dv, group = v.shape[-1], q_num_heads // kv_num_heads
    gates = None
    if decay is not None:
        decay = np.asarray(decay)
        d_last = 1 if decay.shape[-1] == kv_num_heads else dk
        gates = np.exp(decay.reshape(b, t, kv_num_heads, d_last).astype(work))
    betas = None
    if beta is not None:
        beta = np.asarray(beta)
        betas = beta.reshape(b, t, beta.shape[-1], 1).astype(work)
    if past_state is not None:
        state_dtype = np.asarray(past_state).dtype
        state = np.array(past_state, dtype=work)
    else:
        state_dtype = out_dtype
        state = np.zeros((b, kv_num_heads, dk, dv), work)
    s = work.type(scale if scale else 1.0 / np.sqrt(dk))
    qg = q.reshape(b, kv_num_heads, group, t, dk)
    out = np.empty((b, kv_num_heads, group, t, dv), work)
    for i in range(t):  # sequential recurrence over time steps
        k_t, v_t = k[:, :, i], v[:, :, i]
        if gates is not None:
            state *= gates[:, i][..., None]
        if betas is not None:
            retrieved = np.matmul(k_t[:, :, None, :], state)[:, :, 0]
            v_t = betas[:, i] * (v_t - retrieved)
        state += k_t[..., :, None] * v_t[..., None, :]
        np.matmul(qg[:, :, :, i], state, out=out[:, :, :, i])
    out *= s
    y = out.reshape(b, q_num_heads, t, dv).transpose(0, 2, 1, 3).reshape(b, t, -1)
    return y.astype(out_dtype, copy=False), state.astype(state_dtype, copy=False)


@register("FlexAttention", since=1, domain="ai.onnx.preview")
def flex_attention(q, k, v, *captured, scale=None, score_mod=None, prob_mod=None,
                   softmax_precision=None):
    """Attention with optional score / probability modifier subgraphs (compiled plans)."""
    q, k, v = np.asarray(q), np.asarray(k), np.asarray(v)
    work = (np.dtype(tensor_dtype_to_np_dtype(softmax_precision)) if softmax_precision
            else _work_dtype(q.dtype) if q.dtype.char in "efd" else np.dtype(np.float32))
    b, hq, sq, d = q.shape
    hk, sk = k.shape[1], k.shape[2]
    rep = hq // hk
    s = 1.0 / np.sqrt(d) if scale is None else scale
    qg = (q.astype(work) * work.type(s)).reshape(b, hk, rep * sq, d)
    scores = np.matmul(qg, k.astype(work, copy=False).swapaxes(-1, -2))
    scores = scores.reshape(b, hq, sq, sk)
    if score_mod is not None:
        scores = np.array(score_mod.run([scores, *captured])[0], dtype=work)
    probs = _softmax_(scores)
    if prob_mod is not None:
        probs = np.asarray(prob_mod.run([probs, *captured])[0], dtype=work)
    y = np.matmul(probs.reshape(b, hk, rep * sq, sk), v.astype(work, copy=False))
    return y.reshape(b, hq, sq, -1).astype(v.dtype, copy=False)
