"""The train / backtest metrics table fits an 80-column terminal without cutting a number or a name."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from finrl_lite.cli.metrics_table import SHOWN, WIDTH, format_metric, metrics_legend, metrics_table

NAMES = ["agent", "buy_and_hold", "equal_weight_index", "min_variance", "indicator_crossover", "index"]
# Magnitudes from a quick-start run, made harder: large costs and turnover, negative and three-digit returns.
ONE_SEED = {
    "cumulative_return": -0.07268,
    "sharpe": -0.2909,
    "max_drawdown": -0.1683,
    "annual_volatility": 0.1959,
    "turnover": 68.15,
    "costs_paid": 59744.0,
}


def _stat(value: float, n: int) -> dict[str, float]:
    half = abs(value) * 0.37 + 0.01
    return {"mean": value, "low": value - half, "high": value + half, "n": n}


def _render(title: str, metrics: dict, several_seeds: bool) -> str:
    console = Console(width=80, record=True, color_system=None)
    console.print(metrics_table(title, metrics))
    console.print(metrics_legend(several_seeds))
    return console.export_text()


@pytest.mark.parametrize("seeds", [1, 3])
def test_fits_80_columns_and_cuts_nothing(seeds: int) -> None:
    metrics = {
        name: {m: _stat(v * (k + 1) * (1.0 if m != "cumulative_return" else 17.3), seeds) for m, v in ONE_SEED.items()}
        for k, name in enumerate(NAMES)
    }
    text = _render("validation (seeds 0, 1, 2)", metrics, seeds > 1)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text
    for name in NAMES:  # every name whole, on one line
        assert re.search(rf"(^|\s){name}(\s|$)", text, flags=re.M), name
    for name, row in metrics.items():
        for metric, stat in row.items():
            assert format_metric(metric, stat["mean"]) in text, (name, metric)
            if seeds > 1:
                assert "±" + format_metric(metric, (stat["high"] - stat["low"]) / 2).lstrip("-") in text
    for header, _, explanation in SHOWN.values():  # the short headers are explained under the table
        assert header in text and explanation.split(" (")[0].split()[0] in text
    assert ("half-width of the 95% confidence interval" in text) is (seeds > 1)


def test_formats_are_short_and_exact() -> None:
    assert format_metric("cumulative_return", -0.07268) == "-7.3%"
    assert format_metric("sharpe", -0.2909) == "-0.29"
    assert format_metric("costs_paid", 59744.0) == "59.7k" and format_metric("costs_paid", 998.8) == "999"
    assert format_metric("costs_paid", 2.05e6) == "2.05M" and format_metric("turnover", 1234.0) == "1.23e+03"
    assert format_metric("sharpe", float("nan")) == "n/a"
    worst = [format_metric(m, v) for m in SHOWN for v in (-123.456, -9.87e8, -0.0001234, 12345.6, -3.3e14, 1e-300)]
    assert max(map(len, worst)) <= WIDTH == 8
