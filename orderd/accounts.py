"""What an exchange entry of a library executor talks to, and the request budget kept for
it across configure() (BasicOrderExecutor's direct calls; ReliableOrderExecutor hands it
to each new actor system).

binance counts request weight per client address and host, new orders per account, and
bans an address that sends before a 429's Retry-After is up (2 minutes, then longer each
time, up to 3 days). A budget made anew at each configure() would forget a 429 or a ban
under way and send at once: the budget of what an entry talks to is kept, and an entry
that now talks to another account or address gets its own."""

from __future__ import annotations

import hashlib
from pathlib import Path

from actors.exchange.budget import RequestBudget
from actors.exchange.config import ExchangeConfig
from actors.runtime import Clock
from daemon.wiring import credentials, request_budget

Account = tuple[str, ...]
"""What an entry talks to (see `account_of`); never holds a secret."""


def account_of(exchange: ExchangeConfig, state_dir: Path) -> Account:
    """The driver and what it reaches: binance's host (`api_url`, none for binance's
    own) and the account its API key opens, the key known by a digest only; the paper
    venue's book (in `state_dir`, one per entry name) and account there. The entry's
    name is not part of it on binance: a renamed entry still spends the same address's
    weight and the same account's orders."""
    if exchange.driver == "paper":
        return ("paper", str(state_dir), exchange.name, exchange.account)
    api_key, _secret = credentials(exchange)
    digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    return (exchange.driver, exchange.api_url or "", digest)


class Budgets:
    """The request budget of each account configured so far, for as long as the executor
    lives: a 429 or ban of an account taken away and back is still known."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._kept: dict[Account, RequestBudget] = {}

    def of(self, exchange: ExchangeConfig, account: Account) -> RequestBudget:
        """The budget of `account`, which `exchange` now talks to: the one kept, under the
        entry's name and with its `[budget]` shares, else a new one."""
        fresh = request_budget(exchange, self._clock)
        kept = self._kept.setdefault(account, fresh)
        if kept is not fresh:
            kept.exchange = exchange.name
            if kept.config != fresh.config:  # else keep the limits the exchange told
                kept.config = fresh.config
                kept.set_limits(fresh.limits)
        return kept
