"""Device view of a :class:`MarketData` that the environment cores index into, plus counter-based draws."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from finrl_lite.data_processors.market_data import MarketData, TorchMarketData
from finrl_lite.errors import ConfigError, DataError

__all__ = ["EnvMarket", "prepare_market", "hash_uniform", "draw_keys", "episode_bounds", "seed_keys"]

_MASK31 = 0x7FFFFFFF


@dataclass(frozen=True, eq=False)
class EnvMarket:
    """Market tensors on the environment device, shared by every environment (indexed, never copied per env).

    Attributes:
        data: The device tensors of the panel (``values [T, N, F]``, ``valid [T, N]``, ``market [T, M]``).
        open: ``[T, N]`` open prices (one contiguous plane, copied once per market).
        close: ``[T, N]`` close prices (forward-filled after a ticker's last bar, 0 before its first).
        features: ``[T, K * N]`` observed per-ticker features, feature-major (FinRL's order), built once.
        risk: ``[T]`` the risk series compared with the turbulence threshold (zeros when the data has none).
        day: ``[T]`` int64 calendar-day number of each bar (for the T+1 rule).
        feature_names: The K observed feature names.
        first_start: First bar an episode may start on (the indicator warm-up).
        last_start: Last bar an episode may start on.
        num_dates: T.
        num_tickers: N.
        tickers: Ticker symbols.
        obs_table: ``[T, D]`` per-bar part of an environment's observation, precomputed by its observation
            builder (``None`` until an environment sets it).
    """

    data: TorchMarketData
    open: torch.Tensor
    close: torch.Tensor
    features: torch.Tensor
    risk: torch.Tensor
    day: torch.Tensor
    feature_names: tuple[str, ...]
    first_start: int
    last_start: int
    num_dates: int
    num_tickers: int
    tickers: tuple[str, ...]
    obs_table: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        """Device of the tensors."""
        return self.close.device


def prepare_market(
    market: MarketData,
    *,
    features: tuple[str, ...] | None,
    risk_series: str | None,
    episode_length: int | None,
    random_start: bool,
    device: str | torch.device,
    dtype: torch.dtype,
) -> EnvMarket:
    """Move ``market`` to ``device`` once and derive the index tensors an environment core needs.

    Args:
        market: The panel (already sliced to one split).
        features: Per-ticker features to observe; ``None`` means all non-OHLCV fields.
        risk_series: Market series used by the turbulence rule, or ``None`` (zeros).
        episode_length: Steps per episode, or ``None`` to run to the end of the data.
        random_start: Whether starts are drawn at random (sets :attr:`EnvMarket.last_start`).
        device: Torch device.
        dtype: Floating dtype of the tensors.

    Raises:
        DataError: A field or series is missing, or the data is too short for one step.
        ConfigError: ``episode_length`` does not fit in the data after the warm-up.
    """
    for name in ("open", "close"):
        market.field_index(name)  # raises a DataError naming the fields
    names = market.feature_fields if features is None else tuple(features)
    feat_idx = [market.field_index(f) for f in names]
    t_len, n = market.num_dates, market.num_tickers
    if t_len < 2 or n < 1:
        raise DataError(f"an environment needs at least 2 bars and 1 ticker; data has {t_len} bars, {n} tickers")
    data = market.to_torch(device=device, dtype=dtype)
    values = data.values
    feats = values[:, :, feat_idx].permute(0, 2, 1).reshape(t_len, len(feat_idx) * n).contiguous()
    if risk_series is not None:
        risk = torch.from_numpy(np.nan_to_num(market.market(risk_series), nan=0.0)).to(device=device, dtype=dtype)
    else:
        risk = torch.zeros(t_len, device=device, dtype=dtype)
    days = market.dates.astype("datetime64[D]").astype(np.int64)
    first = int(market.warmup)
    last_bar = t_len - 1
    if episode_length is not None:
        last = last_bar - episode_length
        if last < first:
            raise ConfigError(
                f"episode_length={episode_length} does not fit: data has {t_len} bars and a warm-up of {first} "
                f"(at most {last_bar - first} steps)"
            )
    else:
        if last_bar - 1 < first:
            raise DataError(f"data has {t_len} bars and a warm-up of {first}: no bar left to trade")
        # Random starts inside the first half of the tradable bars keep every episode reasonably long.
        last = first + (last_bar - 1 - first) // 2
    if not random_start:
        last = first
    return EnvMarket(
        data=data,
        open=values[:, :, market.field_index("open")].contiguous(),
        close=values[:, :, market.field_index("close")].contiguous(),
        features=feats,
        risk=risk,
        day=torch.from_numpy(days).to(device),
        feature_names=names,
        first_start=first,
        last_start=last,
        num_dates=t_len,
        num_tickers=n,
        tickers=market.tickers,
    )


def hash_uniform(key: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """Counter-based pseudo-random integers in ``[0, 2**31)`` from int64 ``key`` and ``counter``.

    A branch-free integer hash (xorshift-multiply rounds kept below 2**62 so int64 never overflows): each
    environment draws its episode starts from its own key and episode counter, so a batch of environments
    and the same environments run one by one draw exactly the same numbers, with no generator state
    inside ``step``.
    """
    x = (key * 0x5BD1E995 + counter * 0x27D4EB2F + 0x165667B1) & _MASK31
    for mult in (0x2C1B3C6D, 0x297A2D39, 0x1B873593):
        x = x ^ (x >> 15)
        x = (x * mult) & _MASK31
    return x ^ (x >> 13)


def episode_bounds(
    market: EnvMarket, key: torch.Tensor, episode: torch.Tensor, episode_length: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(start, end)`` bars of each environment's episode, drawn from its key and episode counter."""
    span = market.last_start - market.first_start + 1
    start = market.first_start + hash_uniform(key, episode) % span
    if episode_length is None:
        return start, torch.full_like(start, market.num_dates - 1)
    return start, start + episode_length


def draw_keys(generator: torch.Generator, num_envs: int, device: torch.device) -> torch.Tensor:
    """Per-environment int64 keys in ``[0, 2**31)`` drawn from an explicit generator."""
    keys = torch.randint(0, _MASK31, (num_envs,), generator=generator, device=generator.device, dtype=torch.int64)
    return keys.to(device)


def seed_keys(seeds: list[int], device: torch.device) -> torch.Tensor:
    """Per-environment keys from explicit integer seeds (environment i gets the key of seed i)."""
    keys = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        keys.append(torch.randint(0, _MASK31, (1,), generator=gen, dtype=torch.int64))
    return torch.cat(keys).to(device)
