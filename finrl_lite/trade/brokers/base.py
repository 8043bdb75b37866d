"""What the loop needs from a broker, and the order and account records brokers answer with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from finrl_lite.trade.orders import OrderIntent

__all__ = [
    "Account",
    "Broker",
    "BrokerOrder",
    "DuplicateClientOrderId",
    "OrderRejected",
    "SubmitUncertain",
]

OrderStatus = Literal["accepted", "partially_filled", "filled", "expired", "canceled", "rejected"]


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it.

    Attributes:
        client_order_id: Our deterministic id (the key the journal and the broker share).
        broker_order_id: The broker's own id.
        ticker: Symbol in the run's spelling.
        side: ``buy`` or ``sell``.
        qty: Ordered shares.
        status: Normalised status (``accepted`` and ``partially_filled`` are open; the rest are final).
        filled_qty: Shares filled so far.
        filled_avg_price: Average fill price (None before a fill).
        fee: Fees charged on the fills (currency; 0 where the broker reports none).
        reason: Why it was rejected or expired, when the broker says.
    """

    client_order_id: str
    broker_order_id: str
    ticker: str
    side: str
    qty: float
    status: OrderStatus
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    fee: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class Account:
    """Cash and, where the broker computes it, equity (currency)."""

    cash: float
    equity: float | None = None


class OrderRejected(Exception):
    """The broker received the order and refused it (insufficient buying power, unknown symbol...)."""


class DuplicateClientOrderId(Exception):
    """The broker already has an order with this client order id (it was sent before): look it up, never resend."""


class SubmitUncertain(Exception):
    """The submit's outcome is unknown (timeout, connection lost, server error): look the order up by its id."""


@runtime_checkable
class Broker(Protocol):
    """A broker adapter: orders keyed by client order id, positions, account."""

    name: str

    def submit(self, intent: OrderIntent) -> BrokerOrder:
        """Send one market order; raises :class:`OrderRejected`, :class:`DuplicateClientOrderId` or
        :class:`SubmitUncertain`."""
        ...

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The order with this client order id, or None when the broker has never received it."""
        ...

    def list_orders(self, prefix: str) -> list[BrokerOrder]:
        """Every order whose client order id starts with ``prefix``."""
        ...

    def positions(self) -> dict[str, float]:
        """Shares held per ticker (non-zero positions only)."""
        ...

    def account(self) -> Account:
        """Cash and equity."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
