"""The `[exchanges.risk]` tables as the risk policy and the client rate limiter use them."""

from __future__ import annotations

from decimal import Decimal

from actors.order.config import RiskConfig
from actors.order.risk import RiskLimits
from daemon.config import Config
from daemon.rate_limit import Rate


def risk_limits(config: Config) -> dict[str, RiskLimits]:
    return {e.name: _limits(e.risk) for e in config.exchanges}


def _limits(risk: RiskConfig) -> RiskLimits:
    return RiskLimits(
        max_order_notional=(Decimal(str(risk.max_order_notional))
                            if risk.max_order_notional > 0 else None),
        max_open_orders=risk.max_open_orders or None,
        max_open_orders_per_symbol=risk.max_open_orders_per_symbol or None,
        symbols=frozenset(risk.symbols) if risk.symbols else None,
    )


def client_rates(config: Config) -> dict[str, Rate]:
    """Exchanges with a client submit rate; the others are not limited."""
    return {e.name: Rate(e.risk.client_submit_rate_per_s,
                         float(e.risk.client_submit_burst
                               or max(1.0, e.risk.client_submit_rate_per_s)))
            for e in config.exchanges if e.risk.client_submit_rate_per_s > 0}


def describe(config: Config) -> str:
    """What the limits are, for the reload log."""
    parts = []
    for exchange in config.exchanges:
        risk = exchange.risk
        if risk == RiskConfig():
            parts.append(f"{exchange.name}: none")
            continue
        parts.append(f"{exchange.name}: notional {risk.max_order_notional or '-'}, open "
                     f"{risk.max_open_orders or '-'}/{risk.max_open_orders_per_symbol or '-'}"
                     f" per symbol, symbols {','.join(risk.symbols) or 'all'}, client rate "
                     f"{risk.client_submit_rate_per_s or '-'}/s")
    return "; ".join(parts)
