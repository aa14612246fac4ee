"""What an exchange entry of a library executor talks to, and the request budget kept for
it across configure() (BasicOrderExecutor's direct calls; ReliableOrderExecutor hands it
to each new actor system).

An entry's orders are where the daemon says they are: its placement (daemon.wiring),
the driver and, on binance, the address spelled one way (binance's own hosts and no
`api_url` are one, the scheme's port dropped). Not the API key: a key rotated on the
same account keeps the orders placed with the one before.

binance counts request weight per client address and host, new orders per account, and
bans an address that sends before a 429's Retry-After is up (2 minutes, then longer each
time, up to 3 days). A budget made anew at each configure() would forget a 429 or a ban
under way and send at once: the budget of the placement and API key (two keys may be two
accounts) is kept, and an entry that now talks to another gets its own."""

from __future__ import annotations

import hashlib
from pathlib import Path

from actors.exchange.budget import RequestBudget
from actors.exchange.config import ExchangeConfig
from actors.runtime import Clock
from daemon.wiring import credentials, placement, request_budget

Placement = tuple[str, ...]
"""Where an entry's orders are (see `placement_of`)."""
Account = tuple[str, ...]
"""What an entry's requests are counted against (see `account_of`); never holds a
secret."""


def placement_of(exchange: ExchangeConfig, state_dir: Path) -> Placement:
    """The daemon's placement of the entry; on the paper venue also its book, a file per
    entry name in `state_dir`. The entry's name is not part of it on binance: a renamed
    entry still reaches the same address."""
    if exchange.driver == "paper":
        return (placement(exchange), str(state_dir), exchange.name)
    return (placement(exchange),)


def account_of(exchange: ExchangeConfig, state_dir: Path) -> Account:
    """The placement and, off the paper venue, the API key, known by a digest only: the
    account its requests are counted against."""
    where = placement_of(exchange, state_dir)
    if exchange.driver == "paper":  # the account is in the placement
        return where
    api_key, _secret = credentials(exchange)
    return (*where, hashlib.sha256(api_key.encode()).hexdigest()[:16])


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
