"""Risk features: the turbulence index (Mahalanobis distance of a day's returns from the trailing window)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from finrl_lite.errors import DataError
from finrl_lite.torch_threads import torch_threads

__all__ = ["turbulence"]

logger = logging.getLogger(__name__)

_RCOND = 1e-15  # numpy.linalg.pinv's default cutoff, relative to the largest eigenvalue
_PIVOT_TOL = 1e-10  # a Cholesky pivot below this (relative) sends the day to the eigh path
_CHUNK_ELEMS = 8_000_000  # float64 elements per batched block (~64 MB)


def _returns(close: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Simple returns and where they are real (a valid bar following a valid bar)."""
    prev = close[:-1]
    ok = np.zeros(close.shape, dtype=bool)
    ok[1:] = valid[1:] & valid[:-1] & np.isfinite(close[1:]) & np.isfinite(prev) & (prev != 0)
    ret = np.zeros(close.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        ret[1:] = np.where(ok[1:], close[1:] / np.where(ok[1:], prev, 1.0) - 1.0, 0.0)
    return ret, ok


def _eigh_distance(a: np.ndarray, b: np.ndarray, w: int, gram_side: bool) -> np.ndarray:
    """pinv-exact distances for days whose Cholesky failed or was near-singular."""
    e, u = np.linalg.eigh(a)  # ascending
    proj = np.einsum("kij,ki->kj", u, b)
    if gram_side:  # the centering direction (all ones) is an exact zero eigenvalue: drop it
        e, proj = e[:, 1:], proj[:, 1:]
    keep = e > _RCOND * e.max(axis=1, keepdims=True)
    e_safe = np.where(keep, e, 1.0)
    power = 2.0 if gram_side else 1.0
    return (w - 1) * np.where(keep, proj**2 / e_safe**power, 0.0).sum(axis=1)


def _chunk_distances(torch: Any, r: np.ndarray, t0: int, t1: int, w: int) -> np.ndarray:
    """Turbulence of days ``t0..t1-1`` for one fixed ticker set; ``r`` holds that set's returns."""
    k, n = t1 - t0, r.shape[1]
    cur = r[t0:t1]  # [K, n] the day's returns
    gram_side = n > w - 1  # cov has rank <= min(n, w - 1): factor the smaller full-rank side
    if not gram_side:
        win = np.lib.stride_tricks.sliding_window_view(r[t0 - w : t1 - 1], w, axis=0)  # [K, n, w]
        mean = win.mean(axis=2)
        xc = torch.from_numpy(np.ascontiguousarray(win - mean[:, :, None]))
        a = (xc @ xc.transpose(1, 2)).numpy()  # [K, n, n] = (w - 1) * cov
        b = cur - mean
        a_chol = a
        lift = np.zeros(k)
    else:
        # Day-by-day Gram matrices are diagonal blocks of one Gram of the whole span.
        span = torch.from_numpy(np.ascontiguousarray(r[t0 - w : t1]))
        m = (span @ span.T).numpy()  # [w + K, w + K]
        s0, s1 = m.strides
        h = np.lib.stride_tricks.as_strided(m, shape=(k, w, w), strides=(s0 + s1, s0, s1))
        hc = np.lib.stride_tricks.as_strided(m[:, w:], shape=(k, w), strides=(s0 + s1, s0))
        rh = h.mean(axis=2)  # window row . window mean
        mh = rh.mean(axis=1)  # mean . mean
        b = hc - rh - hc.mean(axis=1, keepdims=True) + mh[:, None]  # Xc @ (r_t - mean)
        # b is orthogonal to the ones vector, the centered Gram's null direction: lift that
        # eigenvalue off 0 by adding a constant to every entry (undone for the eigh fallback).
        trace = np.trace(h, axis1=1, axis2=2) - 2.0 * rh.sum(axis=1) + w * mh
        lift = trace / (w - 1) / w
        a_chol = h - rh[:, :, None]  # centered Gram [K, w, w] + lift
        a_chol -= rh[:, None, :]
        a_chol += (mh + lift)[:, None, None]
    ta = torch.from_numpy(a_chol)
    lower, info = torch.linalg.cholesky_ex(ta)
    tb = torch.from_numpy(np.ascontiguousarray(b))[:, :, None]
    z = torch.linalg.solve_triangular(lower, tb, upper=False)
    if gram_side:  # ||G^+ g||^2
        z = torch.linalg.solve_triangular(lower.transpose(1, 2), z, upper=True)
    dist = (w - 1) * (z[:, :, 0] ** 2).sum(dim=1).numpy()
    piv = torch.diagonal(lower, dim1=1, dim2=2).numpy() ** 2
    scale = np.diagonal(a_chol, axis1=1, axis2=2).max(axis=1)
    bad = (info.numpy() != 0) | ~(piv.min(axis=1) > _PIVOT_TOL * scale) | ~np.isfinite(dist)
    if bad.any():
        logger.debug("turbulence: %d day(s) near-singular, using eigh", int(bad.sum()))
        a = a_chol[bad] - lift[bad, None, None]
        dist[bad] = _eigh_distance(a, b[bad], w, gram_side)
    return dist


def turbulence(close: np.ndarray, valid: np.ndarray, window: int = 252) -> np.ndarray:
    """FinRL's turbulence index, vectorized.

    For each day ``t >= window``: ``r`` are simple close-to-close returns; ``hist`` are the returns
    of the ``window`` days before ``t`` (``t`` excluded, so no look-ahead); the tickers used are those
    whose return is real (a valid bar after a valid bar) on every day of ``hist`` and on ``t``;
    ``d_t = (r_t - mean(hist)) pinv(cov(hist)) (r_t - mean(hist))^T`` with ``cov`` the sample
    covariance (ddof=1) and ``pinv`` numpy's (cutoff ``1e-15 * largest eigenvalue``). Days before
    ``window``, and days without any eligible ticker, are 0. The first bar has no return, so day
    ``window`` has no full window of returns and is 0 as well.

    Differences from FinRL's ``FeatureEngineer.calculate_turbulence``: FinRL sets the first two
    positive values to 0 (a quirk, not reproduced here); FinRL trims leading window rows that are NaN
    for every ticker (we require a full window instead); a ticker without a return on day ``t`` makes
    FinRL's value NaN, hence 0, whereas here that ticker is left out.

    The covariance has rank ``<= min(n, window - 1)``; the smaller full-rank side is factored
    (``n x n`` covariance, or the ``window x window`` Gram of the centered window when
    ``n >= window``) with a batched Cholesky over chunks of days sharing one ticker set; the
    ``window x window`` Gram matrices of a chunk are diagonal blocks of a single product. Days where
    the factorization is near-singular fall back to an eigendecomposition with pinv's cutoff. torch
    does the batched linear algebra, on one thread for the duration of the call (restored after).

    Args:
        close: ``[T, N]`` close prices (forward-filled or NaN where not valid).
        valid: ``[T, N]`` bool, True where the ticker had a real bar.
        window: Trailing window length in days (FinRL: 252).

    Returns:
        ``[T]`` float64 turbulence.

    Raises:
        DataError: Shapes differ or ``window < 2``.
    """
    close = np.asarray(close, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if close.ndim != 2 or close.shape != valid.shape:
        raise DataError(f"turbulence: close {close.shape} and valid {valid.shape} must be equal [T, N]")
    if window < 2:
        raise DataError(f"turbulence: window must be >= 2, got {window}")
    t_len, _ = close.shape
    out = np.zeros(t_len)
    if t_len <= window:
        logger.warning("turbulence: %d bars <= window %d, all zeros", t_len, window)
        return out
    ret, ok = _returns(close, valid)
    # ticker eligible on day t: a return on every day t-window..t
    bad = np.concatenate([np.zeros((1, ok.shape[1]), dtype=np.int64), np.cumsum(~ok, axis=0)])
    eligible = (bad[window + 1 :] - bad[: t_len - window]) == 0  # row i is day t = window + i
    # one torch thread: the batched 252 x 252 factorizations gain nothing from a second one, and OpenMP barriers slow
    # them down many times over when the cores are shared
    with torch_threads(1):
        import torch

        _fill(out, torch, ret, eligible, window)
    return out


def _fill(out: np.ndarray, torch: Any, ret: np.ndarray, eligible: np.ndarray, window: int) -> None:
    """Compute every day ``>= window``, chunking runs of days that share one ticker set."""
    t_len = len(out)
    t = window
    while t < t_len:
        cols = eligible[t - window]
        end = t + 1
        while end < t_len and np.array_equal(eligible[end - window], cols):
            end += 1
        idx = np.flatnonzero(cols)
        if idx.size:
            r = np.ascontiguousarray(ret[:, idx])
            side = min(idx.size, window)
            per_day = window * max(side, 1) + side * side
            step = max(1, _CHUNK_ELEMS // per_day)
            for c0 in range(t, end, step):
                c1 = min(end, c0 + step)
                out[c0:c1] = _chunk_distances(torch, r, c0, c1, window)
        t = end
