"""The replay feed's clock and its history/session split, on hand-made bars."""

from __future__ import annotations

import pandas as pd
import pytest

from finrl_lite.errors import DataError
from finrl_lite.trade.feeds.replay import ReplayFeed


def _bars(days: list[str]) -> pd.DataFrame:
    rows = [(pd.Timestamp(d), t, 10.0, 11.0, 9.0, 10.5, 100.0) for d in days for t in ("A", "B")]
    return pd.DataFrame(rows, columns=["date", "tic", "open", "high", "low", "close", "volume"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_speed_releases_bars_on_the_replay_clock() -> None:
    days = ["2019-10-30", "2019-10-31", "2019-11-01", "2019-11-04", "2019-11-05"]
    clock = FakeClock()
    feed = ReplayFeed(_bars(days), "2019-10-31", speed=86_400.0, sleep=clock.sleep, monotonic=lambda: clock.now)
    assert list(feed.history()["date"].unique()) == [pd.Timestamp("2019-10-30")]
    assert feed.tickers == ("A", "B")
    released = [b["date"].iloc[0] for b in feed.bars()]
    assert released == [pd.Timestamp(d) for d in days[1:]]
    assert clock.sleeps == pytest.approx([1.0, 3.0, 1.0])  # one second per day of market time, the weekend included


def test_bars_already_traded_come_without_waiting() -> None:
    days = ["2019-10-31", "2019-11-01", "2019-11-04", "2019-11-05"]
    clock = FakeClock()
    feed = ReplayFeed(_bars(days), "2019-10-31", speed=86_400.0, sleep=clock.sleep, monotonic=lambda: clock.now)
    released = [b["date"].iloc[0] for b in feed.bars(resume_after="2019-11-01T00:00:00")]
    assert len(released) == 4 and clock.sleeps == pytest.approx([1.0])  # only 11-04 -> 11-05 is paced


def test_session_window_and_empty_session() -> None:
    frame = _bars(["2019-10-31", "2019-11-01", "2019-11-04"])
    feed = ReplayFeed(frame, "2019-11-01", end="2019-11-01")
    assert [b["date"].iloc[0] for b in feed.bars()] == [pd.Timestamp("2019-11-01")]
    with pytest.raises(DataError, match=r"replay: empty feed: no bars in the session from 2019-12-01.*2019-10-31"):
        ReplayFeed(frame, "2019-12-01")
    with pytest.raises(DataError, match=r"missing required column\(s\) \['volume'\]"):
        ReplayFeed(frame.drop(columns="volume"), "2019-11-01")


def test_a_replay_file_is_read_with_the_runs_date_format(tmp_path) -> None:  # noqa: ANN001
    days = ["2019-10-30", "2019-10-31", "2019-11-01"]
    frame = _bars(days)
    frame["date"] = frame["date"].dt.strftime("%d/%m/%Y")  # day first, as a run's data.date_format may say
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    feed = ReplayFeed.from_file(path, ("A", "B"), "2019-10-31", date_format="%d/%m/%Y")
    assert [b["date"].iloc[0] for b in feed.bars()] == [pd.Timestamp(d) for d in days[1:]]


def test_the_live_processor_keeps_the_runs_cleaning_settings() -> None:
    from finrl_lite.config import DataConfig
    from finrl_lite.trade.processing import LiveMarket

    data = DataConfig.model_validate({"cleaning": {"max_price_jump": None, "on_bad_rows": "error"}})
    live = LiveMarket(data, "XNYS", _bars(["2019-10-30"]), {}, uses_vix=False, origin="test")
    assert (live._dp.max_price_jump, live._dp.on_bad_rows) == (None, "error")


def test_the_live_processor_reports_a_bad_bar_once_not_on_every_bar(caplog) -> None:  # noqa: ANN001
    from finrl_lite.config import DataConfig
    from finrl_lite.trade.processing import LiveMarket

    days = pd.bdate_range("2019-10-01", periods=6).strftime("%Y-%m-%d").tolist()
    history = _bars(days[:4])
    history.loc[history.index[0], "high"] = 1.0  # an impossible bar (high below the close): dropped with a warning
    live = LiveMarket(DataConfig(indicators=[]), "XNYS", history, {}, uses_vix=False, origin="test")
    with caplog.at_level("WARNING", logger="finrl_lite.data_processors.cleaning"):
        for day in days[4:]:
            live.append(_bars([day]))
            live.market()
    assert sum("impossible bar" in r.getMessage() for r in caplog.records) == 1
