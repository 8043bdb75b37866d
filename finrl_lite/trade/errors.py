"""Errors of the paper-trading loop that a user can cause or must act on (the CLI prints them, exit code 2)."""

from __future__ import annotations

from finrl_lite.errors import FinrlLiteError

__all__ = ["BrokerError", "BrokerUnavailable", "ReconciliationError"]


class ReconciliationError(FinrlLiteError):
    """The journal and the broker disagree beyond the tolerance: the loop refuses to trade (fails closed)."""


class BrokerError(FinrlLiteError):
    """The broker refused a request the loop cannot go on without (authentication, account blocked...)."""


class BrokerUnavailable(BrokerError):
    """The broker could not be reached after the retries (network down, repeated server errors)."""
