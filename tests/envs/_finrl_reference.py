"""A plain, loop-based reference of FinRL 0.3.7's ``StockTradingEnv`` trading rules (numpy, one env).

Written from the rules in DESIGN.md §4, statement by statement in FinRL's order, with FinRL's float
expressions, so the vectorized torch core can be compared with it to 1e-9 relative. FinRL's bug that
blocks a trade when the ticker's first indicator equals exactly 1.0 is left out on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FinrlReference:
    """One FinRL episode over ``close [T, N]`` with a per-day ``turbulence [T]`` series."""

    close: np.ndarray
    turbulence: np.ndarray
    hmax: int = 100
    initial_amount: float = 1_000_000.0
    buy_cost_pct: float = 0.001
    sell_cost_pct: float = 0.001
    reward_scaling: float = 1e-4
    turbulence_threshold: float | None = None
    day: int = 0
    cash: float = 0.0
    shares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cost: float = 0.0
    trades: int = 0
    turb_now: float = 0.0
    cash_limited_buys: int = 0  # buys cut short by the cash left (test diagnostics, not FinRL state)

    def reset(self) -> None:
        self.day = 0
        self.cash = float(self.initial_amount)
        self.shares = np.zeros(self.close.shape[1])
        self.cost = 0.0
        self.trades = 0
        self.turb_now = 0.0  # FinRL: reset() sets self.turbulence = 0; it is read from the data after a step

    @property
    def terminal(self) -> bool:
        return self.day >= self.close.shape[0] - 1

    def total_asset(self) -> float:
        price = self.close[self.day]
        return self.cash + sum(price * self.shares)

    def _sell(self, i: int, action: float, turbulent: bool) -> float:
        price = self.close[self.day, i]
        if turbulent:
            if price > 0 and self.shares[i] > 0:
                n = self.shares[i]
                self.cash += price * n * (1 - self.sell_cost_pct)
                self.shares[i] = 0
                self.cost += price * n * self.sell_cost_pct
                self.trades += 1
                return n
            return 0.0
        if self.shares[i] > 0:
            n = min(abs(action), self.shares[i])
            self.cash += price * n * (1 - self.sell_cost_pct)
            self.shares[i] -= n
            self.cost += price * n * self.sell_cost_pct
            self.trades += 1
            return n
        return 0.0

    def _buy(self, i: int, action: float) -> float:
        price = self.close[self.day, i]
        available = self.cash // (price * (1 + self.buy_cost_pct))
        n = min(available, action)
        self.cash_limited_buys += int(available < action)
        self.cash -= price * n * (1 + self.buy_cost_pct)
        self.shares[i] += n
        self.cost += price * n * self.buy_cost_pct
        self.trades += 1
        return n

    def step(self, actions: np.ndarray) -> float:
        """One FinRL step; returns the reward. Call only while not :attr:`terminal`."""
        assert not self.terminal
        actions = (actions * self.hmax).astype(int)
        turbulent = self.turbulence_threshold is not None and self.turb_now >= self.turbulence_threshold
        if turbulent:
            actions = np.array([-self.hmax] * len(actions))
        begin = self.total_asset()
        # FinRL calls np.argsort(actions) (quicksort). Its order among equal actions depends on the numpy
        # build: insertion sort (stable) for small arrays in older numpy, SIMD sorts (not stable) on
        # AVX-512 machines with numpy >= 1.25. The reference pins the stable order, which the core uses.
        argsort_actions = np.argsort(actions, kind="stable")
        sell_index = argsort_actions[: np.where(actions < 0)[0].shape[0]]
        buy_index = argsort_actions[::-1][: np.where(actions > 0)[0].shape[0]]
        for i in sell_index:
            self._sell(i, actions[i], turbulent)
        if not turbulent:
            for i in buy_index:
                self._buy(i, actions[i])
        self.day += 1
        if self.turbulence_threshold is not None:
            self.turb_now = float(self.turbulence[self.day])
        end = self.total_asset()
        return (end - begin) * self.reward_scaling
