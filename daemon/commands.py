"""The command table: what each wire command does in the daemon.

Handlers run in the front end's thread; they answer at once or hand a message to
an actor that answers later through `answer`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from actors.circuit.breakers import NAME as CIRCUIT_ACTOR
from actors.circuit.breakers import CircuitBoard
from actors.circuit.messages import DescribeCircuits
from actors.exchange.budget import RequestBudget
from actors.exchange.messages import FetchBalance
from actors.exchange.order_params import check_params
from actors.exchange.routing import side_worker_name
from actors.order.actor import NAME as ORDER_ACTOR
from actors.order.messages import (
    Cancel,
    CancelAll,
    GetStats,
    GetStatus,
    ListOrders,
    RecordHalt,
    Submit,
)
from actors.orders import rfc3339
from actors.reconcile.actor import NAME as RECONCILER
from actors.reconcile.messages import RunReconciliation
from actors.runtime import OPERATOR, DaemonState
from actors.supervisor import Registry
from actors.supervisor_messages import Crash
from daemon import __version__
from daemon.frontend import Answer, Handler
from daemon.market_steps import Steps, check_steps
from daemon.rate_limit import ClientRateLimiter
from daemon.thread_cpu import cpu_by_thread
from protocol.errors import ProtocolError
from protocol.messages import (
    ActorArg,
    CancelAllArgs,
    ExchangeArg,
    ListArgs,
    NoArgs,
    OrderRef,
    OrderSpec,
    ReasonArg,
    Request,
    SubmitArgs,
)

log = logging.getLogger(__name__)


def check_exchange(exchange: str, exchanges: list[str]) -> None:
    """unknown_exchange unless `exchange` is configured."""
    if exchange not in exchanges:
        raise ProtocolError("unknown_exchange", f"no exchange named {exchange!r}",
                            field="exchange")


def check_submit(spec: OrderSpec, exchanges: list[str], markets: dict[str, dict[str, Steps]],
                 board: CircuitBoard, drivers: Mapping[str, str]) -> str:
    """The exchange a submit goes to, once it is known, the params its driver's
    (`drivers`: exchange -> driver), its markets loaded, the symbol one of them, amount
    and price on its steps and its circuit not open; else the ProtocolError that says
    which. Wire submits and ReliableOrderExecutor's pass here before anything is
    recorded (BasicOrderExecutor, which has no ledger, runs check_params itself)."""
    exchange = spec.exchange or exchanges[0]
    check_exchange(exchange, exchanges)
    check_params(drivers.get(exchange, ""), spec)
    symbols = markets.get(exchange)
    if symbols is None:
        raise ProtocolError("exchange_unavailable",
                            f"the markets of {exchange} are not loaded yet", retry_after_s=5.0)
    if spec.symbol not in symbols:
        raise ProtocolError("unknown_symbol", f"{spec.symbol} is not a market of {exchange}",
                            field="symbol")
    check_steps(spec, symbols[spec.symbol])
    wait = board.open_for(exchange)
    if wait is not None:  # fail fast: no ledger write, no network
        raise ProtocolError("circuit_open", f"the circuit of {exchange} is open",
                            retry_after_s=wait)
    return exchange


def deliver(registry: Registry, state: DaemonState, name: str, message: Any,
            answer: Answer) -> None:
    """Hand `message` to actor `name` (kept for it while it restarts); when it cannot
    be taken, `answer` says why, retryably."""
    if registry.tell(name, message):
        return
    if state.value in ("stopping", "halted"):
        answer(ProtocolError("halted", f"the daemon is {state.value}", retry_after_s=1.0))
    else:
        answer(ProtocolError("internal", f"the {name} actor is restarting; retry",
                             retry_after_s=1.0))


class Balances:
    """The balances of several exchanges, each answered in its own worker's thread, as one
    reply: when the last one is in, or at the first failure."""

    def __init__(self, names: list[str], answer: Answer) -> None:
        self._waiting = set(names)
        self._answer = answer
        self._gathered: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._done = False

    def reply_of(self, name: str) -> Answer:
        def reply(result: dict[str, Any] | ProtocolError) -> None:
            with self._lock:
                if self._done:
                    return
                if not isinstance(result, ProtocolError):
                    self._gathered[name] = result["balances"]
                    self._waiting.discard(name)
                    if self._waiting:
                        return
                    result = {"balances": self._gathered, "at": rfc3339(time.time())}
                self._done = True
            self._answer(result)
        return reply


class Commands:
    """Serves the wire commands from the actors and the daemon state."""

    def __init__(self, registry: Registry, state: DaemonState,
                 markets: dict[str, dict[str, Steps]], exchanges: list[str],
                 board: CircuitBoard, *, drivers: Mapping[str, str],
                 limiter: ClientRateLimiter | None = None,
                 refused: Callable[[], int] = lambda: 0, fault_commands: bool = False,
                 budgets: Mapping[str, RequestBudget] | None = None,
                 streams: Callable[[], dict[str, Any]] = dict) -> None:
        """`markets` fills in as each exchange's markets load; the first exchange is the
        default; `drivers` names each exchange's driver; `refused` counts clients refused
        by CURVE; `fault_commands` adds the test-only `crash` command; `budgets` are the
        exchanges' request budgets (health shows them); `streams` says how each
        exchange's user-data stream is."""
        self.streams = streams
        self.registry = registry
        self.state = state
        self.markets = markets
        self.exchanges = exchanges
        self.default_exchange = exchanges[0]
        self.board = board
        self.drivers = drivers
        self.limiter = limiter
        self.refused = refused
        self.fault_commands = fault_commands
        self.budgets = budgets or {}

    def handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {
            "ping": self.ping, "health": self.health, "submit": self.submit,
            "status": self.status, "cancel": self.cancel, "list": self.list,
            "halt": self.halt, "resume": self.resume, "stats": self.stats,
            "reconcile": self.reconcile, "cancel_all": self.cancel_all,
            "balance": self.balance,
        }
        if self.fault_commands:
            handlers["crash"] = self.crash
        return handlers

    def _with_circuits(self, answer: Answer, result: dict[str, Any], key: str) -> None:
        """Complete `result` with every circuit (from CircuitActor, without waiting)."""

        def reply(circuits: dict[str, Any] | ProtocolError) -> None:
            answer({**result, key: {} if isinstance(circuits, ProtocolError) else circuits})

        if not self.registry.tell(CIRCUIT_ACTOR, DescribeCircuits(reply)):
            answer({**result, key: {}})

    def _to_orders(self, message: Any, answer: Answer) -> None:
        deliver(self.registry, self.state, ORDER_ACTOR, message, answer)

    def ping(self, request: Request, args: NoArgs, answer: Answer) -> None:
        """Liveness: version, uptime and state."""
        answer({"version": __version__, "uptime_s": round(self.state.uptime(), 3),
                "state": self.registry.reported(self.state.value)})

    def health(self, request: Request, args: NoArgs, answer: Answer) -> None:
        """State, why submits are refused (a halt's reason, conditions), each actor's
        liveness and restarts (an actor that is down says for how long, and the state is
        `starting` until it is back), each exchange's circuit and request budget (weight
        used and its limit, a 429's or 418's pause, new orders in each order window), the
        orders whose outcome is still being resolved (from the snapshot OrderActor leaves
        on every tick, so health answers even while that actor restarts), and each
        streamed exchange's user-data stream: live, its lag, reconnects and gaps found."""
        self._with_circuits(answer, {"state": self.registry.reported(self.state.value),
                                     "reason": self.state.reason,
                                     "conditions": self.state.conditions,
                                     "actors": self.registry.health(),
                                     "refused_clients": self.refused(),
                                     "unresolved": self.state.unresolved,
                                     "budgets": {name: budget.view() for name, budget
                                                 in self.budgets.items()},
                                     "streams": self.streams()}, "circuits")

    def stats(self, request: Request, args: NoArgs, answer: Answer) -> None:
        """Counts by status, retries, submit latency percentiles, unresolved orders,
        circuits, and the CPU each kind of the daemon's threads has spent."""
        threads = cpu_by_thread()  # here: not on OrderActor's thread, which answers below

        def reply(result: dict[str, Any] | ProtocolError) -> None:
            if isinstance(result, ProtocolError):
                answer(result)
            else:
                self._with_circuits(answer, {**result, "threads_cpu_s": threads}, "circuits")

        self._to_orders(GetStats(reply), answer)

    def submit(self, request: Request, args: SubmitArgs, answer: Answer) -> None:
        """Place an order (idempotent by client_order_id)."""
        exchange = check_submit(args.order, self.exchanges, self.markets, self.board,
                                self.drivers)
        wait_s = self.limiter.acquire(request.client, exchange) if self.limiter else None
        if wait_s is not None:
            raise ProtocolError("rate_limited", f"too many submits to {exchange} from this "
                                "client", retry_after_s=wait_s)
        self._to_orders(Submit(args.order, args.wait, answer), answer)

    def status(self, request: Request, args: OrderRef, answer: Answer) -> None:
        """One order by client_order_id or order_id."""
        self._to_orders(GetStatus(args, answer), answer)

    def cancel(self, request: Request, args: OrderRef, answer: Answer) -> None:
        """Cancel one order."""
        self._to_orders(Cancel(args, answer), answer)

    def list(self, request: Request, args: ListArgs, answer: Answer) -> None:
        """A page of orders, oldest first."""
        self._to_orders(ListOrders(args, answer), answer)

    def cancel_all(self, request: Request, args: CancelAllArgs, answer: Answer) -> None:
        """Ask every live order of an exchange, a symbol or all to cancel; also while
        halted. Replies with those orders as recorded (pending_cancel or final)."""
        if args.exchange is not None:
            check_exchange(args.exchange, self.exchanges)
        self._to_orders(CancelAll(args, answer), answer)

    def balance(self, request: Request, args: ExchangeArg, answer: Answer) -> None:
        """The balances of one exchange or all, as the exchange tells them now."""
        names = [args.exchange] if args.exchange is not None else list(self.exchanges)
        for name in names:
            check_exchange(name, self.exchanges)
        gather = Balances(names, answer)
        for name in names:
            reply = gather.reply_of(name)
            deliver(self.registry, self.state, side_worker_name(name), FetchBalance(reply),
                    reply)

    def reconcile(self, request: Request, args: ExchangeArg, answer: Answer) -> None:
        """Run one reconciliation now (after any run in progress); reply with its report."""
        if args.exchange is not None:
            check_exchange(args.exchange, self.exchanges)
        deliver(self.registry, self.state, RECONCILER, RunReconciliation(args.exchange, answer),
                answer)

    def crash(self, request: Request, args: ActorArg, answer: Answer) -> None:
        """Test-only, served with `[supervisor] fault_commands = true`: make the named
        actor crash as if its state broke (after the messages already queued for it);
        the supervisor restarts it."""
        if args.actor not in self.registry.names():
            raise ProtocolError("bad_request", f"no actor named {args.actor!r}", field="actor")
        if not self.registry.tell(args.actor, Crash("crash command")):
            raise ProtocolError("internal", f"the {args.actor} actor is down",
                                retry_after_s=1.0)
        answer({"actor": args.actor})

    def halt(self, request: Request, args: ReasonArg, answer: Answer) -> None:
        """Refuse new submits until resume; recorded in the ledger, so the halt holds
        across restarts. Answers once it is recorded."""
        self.state.halt(args.reason or "halted by command", by=OPERATOR)
        _log_action("halt", request, args)
        self._record(answer)

    def resume(self, request: Request, args: ReasonArg, answer: Answer) -> None:
        """Accept submits again after halt (conditions such as an unwritable ledger end
        by themselves); answers once recorded."""
        self.state.resume()
        _log_action("resume", request, args)
        self._record(answer)

    def _record(self, answer: Answer) -> None:
        def recorded(payload: dict[str, Any] | ProtocolError) -> None:
            answer(payload if isinstance(payload, ProtocolError)
                   else {"state": self.state.value})

        # while OrderActor restarts, it records the state's halt once it is back
        if not self.registry.tell(ORDER_ACTOR, RecordHalt(recorded)):
            answer({"state": self.state.value})


def _log_action(action: str, request: Request, args: ReasonArg) -> None:
    """An operator's action changes what every client gets: said with who sent it."""
    log.warning("%s by client %s (%s)", action, request.client,
                args.reason or "no reason given", extra={"client": request.client})
