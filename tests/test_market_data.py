"""MarketData, Splits, the cache and DataProcessor end to end on the synthetic source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from finrl_lite.config import load_config
from finrl_lite.data_processors import DataProcessor, MarketData, Splits, prepare_data
from finrl_lite.errors import DataError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def market() -> MarketData:
    dp = DataProcessor("synthetic", num_tickers=4, seed=5, ragged=True)
    df = dp.clean(dp.download([], "2018-01-01", "2019-12-31", "1d"))
    df = dp.add_turbulence(dp.add_indicators(df, ["macd", "rsi_30", "close_30_sma"]), window=60)
    df = dp.add_index(dp.add_vix(df))
    return dp.to_market_data(df)


def test_shapes_fields_and_mask(market: MarketData) -> None:
    assert market.values.shape == (503, 4, 8)
    assert market.fields == ("open", "high", "low", "close", "volume", "macd", "rsi_30", "close_30_sma")
    assert market.market_fields == ("turbulence", "vix", "index")
    assert market.warmup == 30
    assert not market.valid[:100, 1].all() and market.valid[:, 0].all()  # SYN001 lists late
    assert np.isnan(market.field("close")[0, 1])  # no backward fill before listing
    assert (market.market("turbulence")[:60] == 0).all() and (market.market("turbulence")[61:] > 0).any()
    with pytest.raises(ValueError):
        market.values[0, 0, 0] = 1.0  # immutable


def test_to_torch_one_transfer_no_nan(market: MarketData) -> None:
    t = market.to_torch("cpu", torch.float32)
    assert t.values.dtype == torch.float32 and t.values.shape == (503, 4, 8)
    assert not torch.isnan(t.values).any() and t.valid.dtype == torch.bool
    assert torch.equal(t.valid, torch.from_numpy(market.valid.copy()))
    assert t.market.shape == (503, 3)


def test_save_load_round_trip(market: MarketData, tmp_path: Path) -> None:
    with_splits = DataProcessor("synthetic").to_market_data(market.to_frame(), Splits({"train": ("2018-03-01", "2018-12-31")}))
    path = with_splits.save(tmp_path / "m.parquet")
    back = MarketData.load(path)
    assert back.fingerprint() == with_splits.fingerprint()
    np.testing.assert_array_equal(back.values, with_splits.values)
    assert back.splits is not None and str(back.splits["train"]) == "2018-03-01..2018-12-31"
    (tmp_path / "junk.parquet").write_text("junk")
    with pytest.raises(DataError, match="not a readable parquet file"):
        MarketData.load(tmp_path / "junk.parquet")


def test_splits_rules(market: MarketData) -> None:
    with pytest.raises(DataError, match="'train' .* and 'test' .* overlap"):
        Splits({"train": ("2018-01-01", "2018-12-31"), "test": ("2018-12-01", "2019-06-30")})
    with pytest.raises(DataError, match="lies outside the data"):
        Splits({"test": ("2019-06-01", "2020-06-30")}).validate(market.dates, market.warmup)
    with pytest.raises(DataError, match="has 10 bars after the indicator warm-up; it needs at least 30"):
        Splits({"train": ("2018-01-01", "2018-02-28")}).validate(market.dates, market.warmup)
    splits = Splits({"train": ("2018-01-01", "2018-12-31"), "test": ("2019-01-01", "2019-12-31")})
    splits.validate(market.dates, market.warmup)
    from dataclasses import replace

    test = replace(market, splits=splits).slice("test")
    assert test.num_dates == 252 and str(test.dates[0])[:10] == "2019-01-02" and test.warmup == 0
    assert replace(market, splits=splits).slice("train").warmup == 30


def test_unknown_indicator_lists_known() -> None:
    dp = DataProcessor("synthetic", num_tickers=2)
    df = dp.clean(dp.download([], "2019-01-01", "2019-03-31"))
    with pytest.raises(DataError, match="macdd"):
        dp.add_indicators(df, ["macdd"])


def test_vix_missing_for_file_source(tmp_path: Path) -> None:
    dp = DataProcessor("synthetic", num_tickers=2)
    df = dp.clean(dp.download([], "2019-01-01", "2019-03-31"))
    p = tmp_path / "x.csv"
    df.drop(columns="valid").to_csv(p, index=False)
    with pytest.raises(DataError, match="source 'csv' has no VIX series"):
        DataProcessor("csv", path=p).add_vix(df)


def test_prepare_is_cached_and_deterministic(tmp_path: Path) -> None:
    cfg = load_config(REPO / "configs" / "quickstart.yaml", [f"data.cache.dir={tmp_path}", "data.synthetic.num_tickers=3"])
    first = prepare_data(cfg)
    second = prepare_data(cfg)
    assert not first.cache_hit and second.cache_hit
    assert first.market.fingerprint() == second.market.fingerprint()
    uncached = prepare_data(cfg, use_cache=False)
    assert uncached.market.fingerprint() == first.market.fingerprint()
    assert list(first.market.splits or {}) == ["train", "validation", "test", "trade"]
    assert len(list(tmp_path.glob("*.parquet"))) == 1
    other = load_config(
        REPO / "configs" / "quickstart.yaml",
        [f"data.cache.dir={tmp_path}", "data.synthetic.seed=1", "data.synthetic.num_tickers=3"],
    )
    assert not prepare_data(other).cache_hit


def test_prepare_sp500_csv(sp500_path: Path, tmp_path: Path) -> None:
    cfg = load_config(
        REPO / "configs" / "sp500_csv.yaml",
        [f"data.path={sp500_path}", f"data.cache.dir={tmp_path}", "data.tickers=[AAPL, MSFT, VRTX, DHR, CHD]"],
    )
    prepared = prepare_data(cfg)
    m = prepared.market
    assert m.tickers == ("AAPL", "CHD", "DHR", "MSFT", "VRTX")
    assert prepared.report.counts()["NaN price"] >= 2
    assert m.num_dates == 1259 and 0.98 < m.valid.mean() < 1.0
