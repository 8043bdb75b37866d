"""The simulator's default constants are what the calibration fits on the LOBSTER sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from finrl_lite.envs.melo.calibration import DEFAULT_CALIBRATION, calibrate_lobster
from finrl_lite.errors import DataError


def test_defaults_match_the_lobster_fit(lobster_paths: tuple[Path, Path]) -> None:
    events, trades = lobster_paths
    fit = calibrate_lobster(events, trades)
    assert [s.symbol for s in fit.symbols] == ["AAPL", "AMZN", "GOOG"]
    for got, want in zip(fit.symbols, DEFAULT_CALIBRATION.symbols, strict=False):
        assert got.moves_per_period == pytest.approx(want.moves_per_period, rel=1e-3)
        assert got.move_bps == pytest.approx(want.move_bps, rel=1e-3)
        assert got.spread_bps == pytest.approx(want.spread_bps, rel=1e-3)
        assert got.hidden_executions_per_period == pytest.approx(want.hidden_executions_per_period, rel=1e-2)
    assert fit.u_shape == pytest.approx(DEFAULT_CALIBRATION.u_shape, rel=1e-3)
    assert fit.regime_rate == pytest.approx(DEFAULT_CALIBRATION.regime_rate, rel=1e-2)
    assert fit.regime_share == pytest.approx(DEFAULT_CALIBRATION.regime_share, abs=1e-3)
    assert fit.regime_switch_prob == pytest.approx(DEFAULT_CALIBRATION.regime_switch_prob, rel=1e-2)
    # the stylised facts the simulator relies on
    c0, c1 = fit.u_shape
    assert c1 > 0 and c0 + c1 > 1.5 * c0  # U-shape: open/close busier than midday
    calm, normal, volatile = fit.regime_rate
    assert calm < normal < volatile
    assert "AAPL" in fit.markdown()


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        calibrate_lobster(tmp_path / "nope.csv.gz")
