"""A small seeded synthetic market, the default data of the registered environments.

The full synthetic source lives in :mod:`finrl_lite.data_processors`; this one is deliberately tiny and
self-contained (numpy only) so that ``gymnasium.make("finrl_lite/StockTrading-v0")`` works with no data.
"""

from __future__ import annotations

import numpy as np

from finrl_lite.data_processors.market_data import MarketData

__all__ = ["default_market"]


def default_market(
    num_tickers: int = 5,
    num_dates: int = 300,
    num_features: int = 2,
    seed: int = 0,
    ragged: bool = False,
) -> MarketData:
    """One-factor log-normal prices with GARCH-like volatility, simple features and a turbulence series.

    Args:
        num_tickers: N.
        num_dates: T business days from 2020-01-01.
        num_features: Number of feature fields (``f0, f1, ...``: trailing returns and a moving-average gap).
        seed: Seed of the numpy generator.
        ragged: Make the last ticker list late and the first one delist early (exercises the ``valid`` mask).

    Returns:
        A :class:`MarketData` with fields ``open, high, low, close, volume, f0, ...`` and market series
        ``turbulence`` and ``vix``, no warm-up.
    """
    rng = np.random.default_rng(seed)
    t, n = num_dates, num_tickers
    market_ret = np.zeros(t)
    vol = np.full(t, 0.01)
    shocks = rng.standard_t(df=5, size=t) / np.sqrt(5 / 3)
    for i in range(1, t):
        vol[i] = np.sqrt(1e-6 + 0.08 * market_ret[i - 1] ** 2 + 0.9 * vol[i - 1] ** 2)
        market_ret[i] = 0.0003 + vol[i] * shocks[i]
    beta = rng.uniform(0.6, 1.4, size=n)
    idio = rng.normal(0.0, 0.012, size=(t, n))
    rets = market_ret[:, None] * beta[None, :] + idio
    close = 50.0 * rng.uniform(0.5, 3.0, size=n)[None, :] * np.exp(np.cumsum(rets, axis=0))
    gap = rng.normal(0.0, 0.004, size=(t, n))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(gap)
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.005, size=(t, n))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.005, size=(t, n))))
    volume = rng.lognormal(13.0, 0.5, size=(t, n))
    feats = []
    for k in range(num_features):
        if k % 2 == 0:
            lag = 1 + k
            f = np.zeros((t, n))
            f[lag:] = close[lag:] / close[:-lag] - 1.0
        else:
            f = np.zeros((t, n))
            csum = np.cumsum(close, axis=0)
            w = 10
            f[w:] = close[w:] / ((csum[w:] - csum[:-w]) / w) - 1.0
        feats.append(f)
    values = np.stack([open_, high, low, close, volume, *feats], axis=-1)
    valid = np.ones((t, n), dtype=bool)
    if ragged and n >= 2:
        late = t // 4
        valid[:late, -1] = False
        values[:late, -1, :] = np.nan
        early = t - t // 4
        valid[early:, 0] = False
        values[early:, 0, 4:] = np.nan
        values[early:, 0, :4] = values[early - 1, 0, 3]  # prices forward-filled after delisting
    turbulence = np.abs(market_ret) / 0.01 * 10.0
    vix = 100.0 * vol * np.sqrt(252)
    dates = np.busday_offset("2020-01-01", np.arange(t), roll="forward").astype("datetime64[ns]")
    return MarketData(
        dates=dates,
        tickers=tuple(f"SYN{i:02d}" for i in range(n)),
        fields=("open", "high", "low", "close", "volume", *[f"f{k}" for k in range(num_features)]),
        values=values,
        valid=valid,
        market_fields=("turbulence", "vix"),
        market_values=np.stack([turbulence, vix], axis=-1),
        interval="1d",
        warmup=0,
        source=f"finrl_lite.envs.synthetic(seed={seed})",
    )
