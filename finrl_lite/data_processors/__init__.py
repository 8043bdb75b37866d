"""Data processors: sources, cleaning, indicators, risk features, splits, cache and `MarketData`."""

from finrl_lite.data_processors.market_data import MarketData, TorchMarketData
from finrl_lite.data_processors.processor import DataProcessor
from finrl_lite.data_processors.splits import DateRange, Splits

__all__ = ["DataProcessor", "DateRange", "MarketData", "Splits", "TorchMarketData"]
