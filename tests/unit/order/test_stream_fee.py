"""An order's fee is the sum of its trades' fees. binance's executionReport carries the
commission of its own trade only (`n`), which ccxt.pro shows as the order's fee; the
stream's report leaves it out, so an event applied without counting a new trade cannot
leave one trade's commission as the order's fee.

The sequence, with partial fills: a marketable limit order is submitted and at once
canceled (cancel_all, say) while its create is in flight, so it waits as pending_cancel.
The create's FULL answer brings two fills, t1 and t2, both counted, the fee their sum;
the stream's events, held until that answer, then come: t1's is older than what is
known, t2's shows the same fill with another status (partially filled, not
pending_cancel), so it is applied; its trade is known, nothing is counted again, and
t2's commission stayed as the fee of the order. The cancel's answer has no fee and
changes nothing more."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.exchange.messages import TradeView
from actors.order.confirmation import count_fills
from actors.orders import adopt
from protocol.messages import OrderStatus
from tests.recon_support import T0, ledger_order
from tests.unit.stream.test_stream_events import READER


def trade_event(trade_id: int, last: str, cumulative: str, quote: str,
                fee: str) -> dict[str, Any]:
    return {"e": "executionReport", "E": 1_700_000_000_123, "s": "SOLUSD", "c": "od-1",
            "C": "", "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "1.00000000",
            "p": "101.00000000", "x": "TRADE", "X": "PARTIALLY_FILLED", "i": 12,
            "l": last, "z": cumulative, "L": "100.00000000", "n": fee, "N": "USD",
            "T": 1_700_000_000_100, "t": trade_id, "Z": quote, "I": 5, "O": 1_700_000_000_000}


def test_a_late_event_of_a_counted_trade_leaves_the_fee_the_sum_of_the_trades() -> None:
    order = ledger_order("od-1", order_id="12", status="pending_cancel", amount="1",
                         price="101", filled="0.7", fee="0.07", symbol="SOL/USD")
    known = {str(n): TradeView(str(n), "12", "od-1", Decimal(amount), Decimal("100"),
                               Decimal(fee), "USD", 1_700_000_000_100, "SOL/USD")
             for n, amount, fee in ((1, "0.4", "0.04"), (2, "0.3", "0.03"))}
    report = READER.report(trade_event(2, "0.30000000", "0.70000000", "70.00000000",
                                       "0.03000000"))
    assert report is not None and report.view is not None

    # what OrderActor does with it (outcomes: adopt, then count the fills)
    adopt(order, report.view, T0, keep_status=True)
    assert count_fills(order, known, report.trades, T0, "stream") == []

    assert order.status == OrderStatus.PENDING_CANCEL and order.filled == Decimal("0.7")
    assert order.fee_cost == Decimal("0.07")  # t1's 0.04 and t2's 0.03
