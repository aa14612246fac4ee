"""The request budget on an injected clock: weight shares, the exchange's own counts,
order counts, 429 pauses and 418 bans, and a worker's meter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from actors.exchange.budget import WAIT_REASONS, NotSent, RequestBudget
from actors.exchange.limits import BINANCE_LIMITS, BudgetConfig, Limits, limits_of
from actors.exchange.metering import Meter, learn_limits
from actors.exchange.windows import CLOCK_AHEAD_S
from actors.metrics.series import Metrics
from actors.runtime import Clock
from daemon.config import load_config
from daemon.config_loader import ConfigError
from daemon.wiring import request_budget
from tests.integration.test_metrics import sample
from tests.venue_support import FakeClock

MINUTE = 1_700_000_040.0
"""The first second of a calendar minute (and of a 10 s window)."""
SURE = CLOCK_AHEAD_S
"""How far into a window a request goes for its answer's counts to be taken as the
window's own (before that the exchange's clock may still be in the window before)."""
LOOKUP, ORDER = False, True
GET_ORDER = "GET /api/v3/order"
NEW_ORDER = "POST /api/v3/order"


def budget_of(clock: FakeClock, weight: int | None = 100,
              orders: tuple[tuple[int, int], ...] = (), window_s: int = 60) -> RequestBudget:
    """Lookups may use 75 of 100, orders 95 (reserve 0.2, headroom 0.05), a window of
    `window_s`."""
    return RequestBudget("bx", BudgetConfig(reserve=0.2, headroom=0.05),
                         Limits(weight, window_s, orders), clock)


def spend(budget: RequestBudget, weight: float, for_orders: bool, endpoint: str = GET_ORDER,
          new_order: bool = False) -> int:
    """Requests of `weight`, each answered without headers, until the budget says no."""
    sent = 0
    while True:
        try:
            index = budget.take(weight, for_orders, new_order, endpoint)
        except NotSent:
            return sent
        budget.answered(weight, index, new_order, 200, {})
        sent += 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MINUTE)


def test_lookups_stop_at_their_share_orders_go_on_into_the_reserve(clock: FakeClock) -> None:
    budget = budget_of(clock)
    assert spend(budget, 4, LOOKUP) == 18  # 72 of the 75 lookups may use
    clock.advance(20)
    with pytest.raises(NotSent) as refused:
        budget.take(4, LOOKUP, False, GET_ORDER)
    assert refused.value.reason == "lookup_weight"
    assert refused.value.retry_after_s == pytest.approx(40)  # the minute's end
    assert spend(budget, 1, ORDER, NEW_ORDER) == 23  # up to 95: the headroom stays unused
    with pytest.raises(NotSent) as refused:
        budget.take(1, ORDER, True, NEW_ORDER)
    assert refused.value.reason == "order_weight"
    assert budget.view()["weight_used"] == 95
    clock.advance(40)  # a new minute: all of it again
    assert budget.view()["weight_used"] == 0
    assert spend(budget, 4, LOOKUP) == 18


def test_a_spent_share_names_the_exchanges_window(clock: FakeClock) -> None:
    budget = budget_of(clock, window_s=10)
    assert spend(budget, 4, LOOKUP) == 18
    with pytest.raises(NotSent) as refused:
        budget.take(4, LOOKUP, False, GET_ORDER)
    assert str(refused.value) == ("bx: not sent, the lookup share of the request weight "
                                  "(75 of 100 per 10S) is spent")
    assert refused.value.retry_after_s == pytest.approx(10)


def test_the_exchanges_count_replaces_ours_and_never_goes_back(clock: FakeClock) -> None:
    """X-MBX-USED-WEIGHT-1M counts every process on the address: what the others used
    leaves less for us. An earlier answer arriving late does not lower it."""
    budget = budget_of(clock)
    clock.advance(SURE)
    first = budget.take(4, LOOKUP, False, GET_ORDER)
    second = budget.take(4, LOOKUP, False, GET_ORDER)
    assert budget.view()["weight_used"] == 8  # in flight counts
    budget.answered(4, second, False, 200, {"X-MBX-USED-WEIGHT-1M": "66"})
    assert budget.view()["weight_used"] == 70  # 66 at the exchange, 4 still in flight
    budget.answered(4, first, False, 200, {"X-MBX-USED-WEIGHT-1M": "62"})
    assert budget.view()["weight_used"] == 66
    assert spend(budget, 4, LOOKUP) == 2  # 74 of 75
    lost = budget.take(1, ORDER, False, "DELETE /api/v3/order")
    budget.unanswered(1, lost, False)  # no answer: it may have counted
    assert budget.view()["weight_used"] == 75


def test_an_answer_from_the_last_minute_does_not_count_in_this_one(clock: FakeClock) -> None:
    budget = budget_of(clock)
    index = budget.take(4, LOOKUP, False, GET_ORDER)
    clock.advance(60)
    budget.answered(4, index, False, 200, {"X-MBX-USED-WEIGHT-1M": "99"})
    assert budget.view()["weight_used"] == 0


def test_an_order_count_of_the_last_10s_window_does_not_fill_the_next_one() -> None:
    """A create sent at 9.9 s into a 10 s window is counted by the exchange in that
    window (X-MBX-ORDER-COUNT-10S: 100, the limit); its answer comes 0.2 s later, in
    the next window, where the exchange's count starts again from 0. The budget does
    not carry 100 into the new window: the exchange takes 100 orders there."""
    clock = FakeClock(MINUTE + 9.9)
    budget = RequestBudget("bx", BudgetConfig(), Limits(6000, 60, ((10, 100),)), clock)
    taken = budget.take(1, True, True, NEW_ORDER)
    clock.advance(0.2)  # 10.1 s: a new 10 s window, the same minute
    budget.answered(1, taken, True, 201, {"X-MBX-USED-WEIGHT-1M": "40",
                                          "X-MBX-ORDER-COUNT-10S": "100"})
    assert budget.admit_order(queued=0) is None, budget.admit_order(queued=0)
    budget.take(1, True, True, NEW_ORDER)
    assert budget.view()["orders_10s"] == 1


def test_a_local_clock_ahead_of_the_exchange_does_not_keep_its_last_minute() -> None:
    """The host's clock runs 0.5 s ahead of the exchange's. A lookup answered at local
    0.2 s into a minute was counted by the exchange in its previous minute (5,500
    used). From exchange time 0 (local 0.5 s) the exchange counts from 0 again; the
    budget does not keep 5,500 for its minute, which would refuse lookups (share
    4,500) for a minute while the exchange would take 6,000."""
    clock = FakeClock(MINUTE + 0.1)
    budget = RequestBudget("bx", BudgetConfig(), Limits(6000, 60), clock)
    taken = budget.take(4, False, False, GET_ORDER)
    clock.advance(0.1)
    budget.answered(4, taken, False, 200, {"X-MBX-USED-WEIGHT-1M": "5500"})
    clock.advance(5)  # 4.5 s into the exchange's new minute
    try:
        budget.take(4, False, False, GET_ORDER)
    except NotSent as refused:
        pytest.fail(f"lookup refused for {refused.retry_after_s:.1f} s more: {refused}; "
                    f"budget shows {budget.view()['weight_used']} used")


def test_a_steady_80_percent_order_rate_is_never_refused() -> None:
    """Creates at 8 a second (80 % of binance's 100 per 10 s), each answered 100 ms
    later with the exchange's true count of its 10 s window (no clock skew). The
    exchange never refuses one; neither should the budget."""
    clock = FakeClock(MINUTE)
    budget = RequestBudget("bx", BudgetConfig(), Limits(6000, 60, ((10, 100),)), clock)
    exchange: dict[int, int] = {}  # the exchange's own count per 10 s window
    refused = 0
    for step in range(8 * 60):  # one minute
        clock.now = MINUTE + 0.03 + step / 8
        try:
            taken = budget.take(1, True, True, NEW_ORDER)
        except NotSent:
            refused += 1
            continue
        window = int(clock.now // 10)
        exchange[window] = exchange.get(window, 0) + 1
        clock.now += 0.1
        budget.answered(1, taken, True, 201,
                        {"X-MBX-ORDER-COUNT-10S": str(exchange[window])})
    assert refused == 0, f"{refused} of 480 creates refused; the exchange took all"


def test_a_429_pauses_every_request_for_its_retry_after(clock: FakeClock) -> None:
    budget = budget_of(clock)
    index = budget.take(1, ORDER, True, NEW_ORDER)
    budget.answered(1, index, True, 429, {"Retry-After": "7", "X-MBX-USED-WEIGHT-1M": "3"})
    for for_orders in (LOOKUP, ORDER):
        with pytest.raises(NotSent) as refused:
            budget.take(1, for_orders, False, GET_ORDER)
        assert refused.value.reason == "paused"
        assert refused.value.retry_after_s == pytest.approx(7)
    refusal = budget.admit_order(0)
    assert refusal is not None and refusal.retry_after_s == pytest.approx(7)
    view = budget.view()
    assert (view["http_429"], view["banned"], view["paused_for_s"]) == (1, False, 7)
    assert view["paused_until"] is not None
    clock.advance(6.9)
    assert budget.paused_for() == pytest.approx(0.1)
    clock.advance(0.1)
    assert budget.paused_for() is None and budget.admit_order(0) is None
    budget.take(4, LOOKUP, False, GET_ORDER)


def test_a_429_for_the_order_count_does_not_hold_cancels_until_the_minute_ends() -> None:
    """binance answers a new order over the unfilled-order count with 429 (-1015); its
    docs long said without Retry-After. The limit is on new orders in a 10 s window:
    cancels and lookups are not refused, so only new orders wait, until the window
    whose count is full ends, not until the weight minute does."""
    clock = FakeClock(MINUTE + 2)
    budget = RequestBudget("bx", BudgetConfig(), Limits(6000, 60, ((10, 100),)), clock)
    taken = budget.take(1, True, True, NEW_ORDER)
    budget.answered(1, taken, True, 429, {"X-MBX-USED-WEIGHT-1M": "30",
                                          "X-MBX-ORDER-COUNT-10S": "100"})
    assert budget.paused_for() is None
    assert budget.paused_for(new_orders=True) == pytest.approx(8)
    budget.take(1, True, False, "DELETE /api/v3/order")
    budget.take(4, False, False, GET_ORDER)
    with pytest.raises(NotSent) as held:
        budget.take(1, True, True, NEW_ORDER)
    assert held.value.reason == "order_count"
    assert held.value.retry_after_s == pytest.approx(8)
    refusal = budget.admit_order(0)
    assert refusal is not None and refusal.reason == "order_count"
    view = budget.view()
    assert (view["http_429"], view["paused_for_s"], view["orders_held_for_s"]) == (1, 0, 8)
    clock.advance(8)  # the exchange's 10 s order window has ended
    try:
        budget.take(1, True, False, "DELETE /api/v3/order")
    except NotSent as refused:
        pytest.fail(f"a cancel is held {refused.retry_after_s:.0f} s more: {refused}")
    assert budget.admit_order(0) is None
    budget.take(1, True, True, NEW_ORDER)


def test_an_order_count_429_is_told_by_its_code_and_waits_its_retry_after(
        clock: FakeClock) -> None:
    """binance's docs now say the order count's 429 has Retry-After; its code (-1015)
    tells it from the weight's (-1003), which still pauses every request."""
    budget = budget_of(clock, orders=((10, 10), (86400, 1000)))
    clock.advance(SURE)
    budget.answered(1, budget.take(1, ORDER, True, NEW_ORDER), True, 429,
                    {"Retry-After": "3", "X-MBX-USED-WEIGHT-1M": "5"}, code=-1015)
    assert (budget.paused_for(), budget.paused_for(new_orders=True)) == (None, 3)
    budget.take(4, LOOKUP, False, GET_ORDER)
    clock.advance(3)
    assert budget.paused_for(new_orders=True) is None
    # the weight's 429 to a create, with the order count at its limit all the same
    budget.answered(1, budget.take(1, ORDER, True, NEW_ORDER), True, 429,
                    {"Retry-After": "5", "X-MBX-ORDER-COUNT-10S": "10"}, code=-1003)
    assert budget.paused_for() == 5
    with pytest.raises(NotSent, match="429"):
        budget.take(4, LOOKUP, False, GET_ORDER)


def test_a_418_stops_requests_until_the_ban_ends_and_says_so(clock: FakeClock) -> None:
    budget = budget_of(clock)
    bans: list[float] = []
    budget.on_ban = bans.append
    index = budget.take(4, LOOKUP, False, GET_ORDER)
    budget.answered(4, index, False, 418, {"Retry-After": "120"})
    assert bans == [120]
    assert budget.view()["banned"] is True
    clock.advance(119)
    with pytest.raises(NotSent, match="banned"):
        budget.take(1, ORDER, True, NEW_ORDER)
    clock.advance(1)
    assert budget.view()["banned"] is False
    budget.take(1, ORDER, True, NEW_ORDER)
    # a 418 without Retry-After: binance's shortest ban
    budget.answered(1, budget.take(1, ORDER, False, GET_ORDER), False, 418, {})
    assert budget.paused_for() == pytest.approx(120)


def test_new_orders_stop_at_the_order_count_and_submits_are_refused_first(
        clock: FakeClock) -> None:
    budget = budget_of(clock, weight=None, orders=((10, 10), (86400, 12)))
    assert budget.admit_order(queued=9) is None
    assert budget.admit_order(queued=10) is not None  # ten on their way fill the window
    clock.advance(2 * SURE)
    sent = [budget.take(1, ORDER, True, NEW_ORDER) for _ in range(3)]  # in flight
    assert budget.admit_order(queued=3 + 6) is None  # in flight is counted once
    assert budget.admit_order(queued=3 + 7) is not None
    for index in sent:
        budget.answered(1, index, True, 200, {"X-MBX-ORDER-COUNT-10S": "9",
                                              "X-MBX-ORDER-COUNT-1D": "10"})
    assert budget.view()["orders_10s"] == 9  # another process placed six
    budget.take(1, ORDER, True, NEW_ORDER)
    clock.advance(4 - 2 * SURE)
    with pytest.raises(NotSent) as refused:
        budget.take(1, ORDER, True, NEW_ORDER)
    assert (refused.value.reason, refused.value.retry_after_s) == ("order_count", 6)
    refusal = budget.admit_order(0)
    assert refusal is not None and refusal.retry_after_s == pytest.approx(6)
    budget.take(4, LOOKUP, False, GET_ORDER)  # only new orders are counted
    clock.advance(6)
    budget.take(1, ORDER, True, NEW_ORDER)  # a new 10 s window, the day's twelfth
    assert (budget.view()["orders_10s"], budget.view()["orders_1d"]) == (1, 12)
    with pytest.raises(NotSent, match="per 1D"):
        budget.take(1, ORDER, True, NEW_ORDER)


def test_limits_from_exchange_info_capped_by_the_config(clock: FakeClock) -> None:
    rows = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
             "limit": 6100},
            {"rateLimitType": "ORDERS", "interval": "FORTNIGHT", "intervalNum": 1}]
    assert limits_of(rows) == Limits(1200, 60, ((10, 50), (86400, 160000)))
    assert limits_of([]) == Limits(None, 60, ())
    budget = RequestBudget("bx", BudgetConfig(weight_per_minute=600, orders_per_10s=80),
                           BINANCE_LIMITS, clock)
    assert budget.limits == Limits(600, 60, ((10, 80), (86400, 200_000)))
    body = json.dumps({"timezone": "UTC", "rateLimits": rows, "symbols": [{"x": 1}]})
    learn_limits(budget, body)
    assert budget.limits == Limits(600, 60, ((10, 50), (86400, 160000)))
    learn_limits(budget, '{"symbols": []}')  # no rateLimits: the limits stay
    assert budget.view()["weight_limit"] == 600


@pytest.mark.parametrize("key,value", [
    ("reserve", 1.0), ("reserve", -0.1), ("headroom", 1.0), ("reserve", 0.9),
    ("weight_per_minute", -1), ("orders_per_10s", 1.5), ("orders_per_day", True)])
def test_a_budget_section_out_of_range_names_its_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{key}:"):
        BudgetConfig(**{key: value})  # type: ignore[arg-type]


def test_with_no_limits_only_a_pause_holds_requests_back(clock: FakeClock) -> None:
    budget = budget_of(clock, weight=None)
    for _ in range(1000):
        budget.answered(80, budget.take(80, LOOKUP, False, "GET /api/v3/openOrders"), False,
                        200, {})
    assert budget.admit_order(10**6) is None
    assert budget.counts.requests["GET /api/v3/openOrders"] == 1000
    assert budget.view()["weight_limit"] is None


def test_a_lookup_that_may_wait_waits_for_the_next_minute(clock: FakeClock) -> None:
    budget = budget_of(clock)
    spend(budget, 4, LOOKUP)
    clock.advance(55)
    waiting = Meter(budget, sleep=clock.advance, lookup_wait_s=20.0)
    waiting.start("read")
    waiting.sending(GET_ORDER, 4, "GET")
    assert clock.now == pytest.approx(MINUTE + 60)
    waiting.answered(200, {"X-MBX-USED-WEIGHT-1M": "4"})
    waiting.finish()
    assert budget.counts.waits["lookup_weight"] == 1
    # an order worker's lookup is given up at once, a create goes into the reserve
    spend(budget, 4, LOOKUP)
    worker = Meter(budget, sleep=clock.advance)
    worker.start("fetch")
    with pytest.raises(NotSent):
        worker.sending(GET_ORDER, 4, "GET")
    assert clock.now == pytest.approx(MINUTE + 60)
    worker.start("create")
    worker.sending(NEW_ORDER, 1, "POST")
    worker.finish()  # no answer came: spent all the same
    assert budget.view()["weight_used"] == 72 + 1


def test_a_wait_longer_than_allowed_is_not_waited(clock: FakeClock) -> None:
    budget = budget_of(clock)
    spend(budget, 4, LOOKUP)
    meter = Meter(budget, sleep=clock.advance, lookup_wait_s=20.0)
    meter.start("read")
    with pytest.raises(NotSent) as refused:
        meter.sending(GET_ORDER, 4, "GET")
    assert refused.value.retry_after_s == pytest.approx(60)
    assert clock.now == MINUTE


def entry_budget(tmp_path: Path, text: str) -> RequestBudget:
    path = tmp_path / "orderd.toml"
    path.write_text(f'[[exchanges]]\nname = "x"\n{text}')
    return request_budget(load_config(path).exchanges[0], Clock())


def test_each_entry_starts_with_its_exchanges_limits(tmp_path: Path) -> None:
    binance = 'driver = "binance"\napi_key = "k"\nsecret = "s"\n'
    assert entry_budget(tmp_path, binance).limits == BINANCE_LIMITS
    assert entry_budget(tmp_path, "").limits == Limits()  # the paper default: none
    kept = entry_budget(tmp_path, "[exchanges.limits]\nweight_per_minute = 300\n"
                        "orders_per_day = 0\n")
    assert kept.limits == Limits(300, 60, ((10, 100),))  # the venue's, as it keeps them
    seconds = entry_budget(tmp_path, "[exchanges.limits]\nweight_window_s = 5\n")
    assert seconds.limits == Limits(6000, 5, ((10, 100), (86400, 200_000)))  # its window
    small = entry_budget(tmp_path, "[exchanges.limits]\nweight_window_s = 5\n"
                         "[exchanges.budget]\nweight_per_minute = 10\n")
    assert small.limits.weight == 1  # a cap under a window's share is a cap, not none
    orders = entry_budget(tmp_path, "[exchanges.limits]\norders_window_s = 4\n")
    assert orders.limits == Limits(6000, 60, ((4, 100), (86400, 200_000)))  # its window
    capped = entry_budget(tmp_path, binance + "[exchanges.budget]\nweight_per_minute = 1200\n"
                          "reserve = 0.3\n")
    assert capped.limits.weight == 1200 and capped.view()["lookup_limit"] == 780


def test_a_bad_budget_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^exchanges\[0\]\.budget\.reserve:"):
        entry_budget(tmp_path, "[exchanges.budget]\nreserve = 1.5\n")
    with pytest.raises(ConfigError, match=r"^exchanges\[0\]\.budget\.colour: unknown key"):
        entry_budget(tmp_path, "[exchanges.budget]\ncolour = 1\n")


def test_metrics_show_each_budget_from_the_start(clock: FakeClock) -> None:
    metrics = Metrics()
    bx = budget_of(clock, weight=300, orders=((10, 10), (86400, 1000)))
    metrics.watch_budgets({"bx": bx, "paper": budget_of(clock, weight=None)})
    text = generate_latest(metrics.registry).decode()
    for reason in WAIT_REASONS:
        assert f'orderd_exchange_budget_waits_total{{exchange="bx",reason="{reason}"}} 0.0' \
            in text
    for status in ("429", "418"):
        assert (f'orderd_exchange_rate_limit_answers_total{{exchange="paper",status="{status}"}}'
                " 0.0") in text
    assert sample(text, "orderd_exchange_weight_limit", exchange="bx") == 300
    assert sample(text, "orderd_exchange_order_limit", exchange="bx", window="10s") == 10
    clock.advance(SURE)
    index = bx.take(1, ORDER, True, NEW_ORDER)
    bx.answered(1, index, True, 429, {"X-MBX-USED-WEIGHT-1M": "120", "Retry-After": "5",
                                     "X-MBX-ORDER-COUNT-10S": "4"})
    with pytest.raises(NotSent):
        bx.take(4, LOOKUP, False, GET_ORDER)
    bx.waited("paused")
    text = generate_latest(metrics.registry).decode()
    assert sample(text, "orderd_exchange_weight_used", exchange="bx") == 120
    assert sample(text, "orderd_exchange_order_count", exchange="bx", window="10s") == 4
    assert sample(text, "orderd_exchange_paused_seconds", exchange="bx") == 5
    assert sample(text, "orderd_exchange_rate_limit_answers_total", exchange="bx",
                  status="429") == 1
    assert sample(text, "orderd_exchange_requests_total", exchange="bx",
                  endpoint=NEW_ORDER) == 1
    assert sample(text, "orderd_exchange_weight_spent_total", exchange="bx") == 1
    assert sample(text, "orderd_exchange_budget_waits_total", exchange="bx",
                  reason="paused") == 1


def test_tracking_slows_down_while_lookups_run_ahead_of_the_minute(clock: FakeClock) -> None:
    budget = budget_of(clock)  # lookups may use 75
    assert budget.pace() == 1.0
    for _ in range(4):  # 16: a quarter may go at once (start-up, new orders)
        budget.take(4, LOOKUP, False, GET_ORDER)
    assert budget.pace() == 1.0
    for _ in range(5):  # 36 of 75 in the first seconds: read half as often
        budget.take(4, LOOKUP, False, GET_ORDER)
    assert budget.pace() == pytest.approx(0.48 / 0.25)
    clock.advance(30)  # half the minute gone, half the share: on pace
    assert budget.pace() == 1.0
    assert budget_of(clock, weight=None).pace() == 1.0  # no limit: as configured
