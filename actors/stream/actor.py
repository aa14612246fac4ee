"""StreamActor: one exchange's user-data stream, on its own asyncio loop and thread.

ccxt.pro runs on asyncio; a worker thread never waits on it. The actor starts a thread
running one event loop that connects, subscribes, and hands every order event to
OrderActor as ordinary messages. The connection is the driver's (a StreamConnection:
ccxt.pro's for binance, the in-process venue's listeners for paper); the rest is one
path for both. On every (re)connect, and after a gap in the event
sequence, OrderActor first reads each symbol's open orders (tracking's read) before the
stream is trusted; while it is down or stale (no frame for `stale_s`), tracking reads at
its normal pace. A stale connection is closed and made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from actors.exchange.errors import describe
from actors.metrics.alerts import Alert, Alerter
from actors.order.core import NAME as ORDER_ACTOR
from actors.order.messages import ExchangeReport, StreamConnected, StreamEvents
from actors.stream.connection import BuildConnection, StreamConnection
from actors.stream.events import Sequence
from actors.stream.health import StreamHealth
from actors.supervisor import Registry, SupervisedActor

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0
BATCH = 256
"""Most events handed to OrderActor in one message."""
MIN_WAIT_S = 0.001
"""Shortest wait of the read loop: a heartbeat falling due just now never makes it spin."""


def stream_name(exchange: str) -> str:
    """The registry name of an exchange's StreamActor."""
    return f"stream-{exchange}"


@dataclass(frozen=True)
class StreamSettings:
    exchange: str
    build: BuildConnection
    """A new connection telling the callback of every raw event."""
    markets: Callable[[], Mapping[str, Any] | None] = lambda: None
    """The markets a worker of the exchange loaded (a blocking call), so the stream
    does not download them again; None: the stream loads its own."""
    stale_s: float = 10.0
    """No frame for this long: the stream is stale (closed and made again)."""
    backoff_max_s: float = 5.0
    """Largest wait before connecting again (full jitter, doubling)."""
    paused_for: Callable[[], float | None] = lambda: None
    """Seconds until the exchange lets requests go out again (its request budget's pause
    after a 429 or 418), None when they may go now. binance's WebSocket API shares the
    address's weight: a connection or a heartbeat within a 429's Retry-After earns a ban."""


class StreamFailed(Exception):
    """The stream's thread ended unexpectedly: the actor crashes and is restarted."""


class StreamStale(Exception):
    """No frame within stale_s."""


class StreamActor(SupervisedActor):
    """Owns the thread and loop of one exchange's stream."""

    def __init__(self, registry: Registry, settings: StreamSettings, health: StreamHealth,
                 alerter: Alerter) -> None:
        super().__init__(registry, stream_name(settings.exchange))
        self.settings = settings
        self.health = health
        self.alerter = alerter
        self._closing = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._handlers = {StreamFailed: self._failed}

    def on_start(self) -> None:
        self._thread.start()

    def on_stop(self) -> None:
        self._halt_thread()

    def on_crash(self) -> None:
        self._halt_thread()

    def _failed(self, error: StreamFailed) -> None:
        raise error  # a tell: the actor crashes and the supervisor restarts it

    def breaks(self, error: Exception) -> bool:
        return isinstance(error, StreamFailed)

    def _halt_thread(self) -> None:
        self._closing.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed already
                loop.call_soon_threadsafe(task.cancel)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(STOP_TIMEOUT_S)
        self.health.down(self.settings.exchange, "stopped")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._connect_forever())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # the actor restarts with a new thread
            log.exception("stream of %s ended", self.settings.exchange)
            if not self._closing.is_set():
                self.actor_ref.tell(StreamFailed(f"{type(exc).__name__}: {exc}"))
        finally:
            loop.close()

    async def _connect_forever(self) -> None:
        failures = 0
        while not self._closing.is_set():
            await self._wait_out_pause()
            started = time.monotonic()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - said, then connected again
                self._lost(exc)
            if time.monotonic() - started > self.settings.stale_s:
                failures = 0  # it worked for a while: no long wait
            failures += 1
            cap = min(self.settings.backoff_max_s, 0.1 * 2 ** min(failures, 10))
            await asyncio.sleep(random.uniform(0.0, cap))

    async def _wait_out_pause(self) -> None:
        """Until the exchange lets requests go out again: connecting is a request too."""
        while not self._closing.is_set():
            left = self.settings.paused_for()
            if left is None:
                return
            await asyncio.sleep(min(left, self.settings.stale_s))

    def _lost(self, exc: Exception) -> None:
        reason = _reason(exc)
        exchange = self.settings.exchange
        log.warning("stream of %s lost: %s; REST tracking takes over", exchange, reason)
        if self.health.down(exchange, reason):
            self.alerter.alert(Alert("stream_down", "warning", f"the user-data stream of "
                                     f"{exchange} is down ({reason}); tracking reads its "
                                     "orders meanwhile", {"exchange": exchange}))

    async def _session(self) -> None:
        arrivals = Arrivals()
        connection = self.settings.build(arrivals.put)
        try:
            markets = await asyncio.to_thread(self.settings.markets)
            await connection.open(markets)  # subscribed: every later change is pushed
            epoch = self.health.connected(self.settings.exchange)
            log.info("stream of %s connected (connection %d)", self.settings.exchange, epoch)
            self._tell(StreamConnected(self.settings.exchange, epoch))
            await self._read(connection, arrivals)
        finally:
            arrivals.close()
            await connection.close()

    async def _read(self, connection: StreamConnection, arrivals: Arrivals) -> None:
        """Events as they arrive, until the connection fails or goes stale; a heartbeat
        request keeps frames coming while there are no events."""
        exchange, sequence = self.settings.exchange, Sequence()

        def deliver(events: list[Any]) -> None:
            self.health.frame(exchange, connection.last_frame())
            self._deliver(connection, events, sequence)
            connection.check()  # ended meanwhile: the session ends now, not at a beat

        arrivals.start(deliver)
        ended = asyncio.ensure_future(connection.ended())
        try:
            await self._watch(connection, arrivals, ended)
        finally:
            ended.cancel()

    async def _watch(self, connection: StreamConnection, arrivals: Arrivals,
                     ended: asyncio.Future[None]) -> None:
        """Heartbeats while the stream is quiet; ends when the connection does (at once,
        event or not), or goes stale."""
        exchange = self.settings.exchange
        stale_s, beat_s = self.settings.stale_s, self.settings.stale_s / 3
        wait_s = beat_s
        unpaused = 0.0
        while not self._closing.is_set():
            connection.check()
            await arrivals.failed_within(wait_s, ended)
            if ended.done():
                connection.check()
                raise ConnectionError("the connection ended")
            last = connection.last_frame()
            self.health.frame(exchange, last)
            now = time.time()
            quiet_s = now - last
            if now - max(last, unpaused) > stale_s:
                raise StreamStale(f"no frame for {stale_s:g} s")
            paused = self.settings.paused_for()
            if paused is not None:
                # no heartbeat while the exchange asks us to wait; events still come, and
                # the quiet counts from the pause's end, where a heartbeat goes out at once:
                # closing the connection would only cost a catch-up when the pause ends
                unpaused = now + paused
                wait_s = max(MIN_WAIT_S, paused)
            elif quiet_s > beat_s:
                await connection.heartbeat()
                wait_s = beat_s  # for its answer
            else:  # until a heartbeat falls due
                wait_s = min(beat_s, max(MIN_WAIT_S, beat_s - quiet_s))

    def _deliver(self, connection: StreamConnection, events: list[Any],
                 sequence: Sequence) -> None:
        exchange, reports = self.settings.exchange, []
        gap = False
        for event in events:
            try:
                item = connection.read(event)
            except Exception:  # one unreadable event; the catch-up covers it
                log.exception("stream event of %s not read", exchange)
                gap = True
                continue
            seen = sequence.see(item.number)
            lag = max(0.0, time.time() - item.at_ms / 1000)
            self.health.event(exchange, lag, seen == "duplicate")
            if seen == "duplicate":
                continue  # applying it again would change nothing; no need to
            gap = gap or seen == "gap"
            if item.report is not None:
                reports.append(item.report)
        for start in range(0, len(reports), BATCH):
            self._tell(StreamEvents(exchange, tuple(reports[start:start + BATCH])))
        if gap:
            log.warning("stream of %s: events lost; catching up by REST", exchange)
            self._tell(StreamConnected(exchange, self.health.distrust(exchange)))

    def _tell(self, message: StreamConnected | StreamEvents | ExchangeReport) -> None:
        if not self.registry.tell(ORDER_ACTOR, message):
            log.warning("stream of %s: %s not delivered", self.settings.exchange,
                        type(message).__name__)


class Arrivals:
    """Raw events from the connection, delivered once a turn of the loop: those handed
    on within one turn go on together. Delivering from the loop's own callback, rather
    than waking a reader task through a queue, saves the loop several turns per event.
    Held until `start`: nothing goes to OrderActor before the connection's
    StreamConnected. After a delivery fails nothing more is delivered, and the session's
    wait ends with its error."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._events: list[Any] = []
        self._deliver: Callable[[list[Any]], None] | None = None
        self._scheduled = False
        self._error: Exception | None = None
        self._failed = asyncio.Event()

    def put(self, event: Any) -> None:
        self._events.append(event)
        if self._deliver is not None and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def start(self, deliver: Callable[[list[Any]], None]) -> None:
        self._deliver = deliver
        self._flush()

    def close(self) -> None:
        self._deliver = None
        self._events.clear()

    async def failed_within(self, wait_s: float,
                            ended: asyncio.Future[None] | None = None) -> None:
        """Wait up to `wait_s`, or until `ended` is done; raise at once what a delivery
        raised."""
        if self._error is None:
            failed = asyncio.ensure_future(self._failed.wait())
            waits: set[asyncio.Future[Any]] = {failed} if ended is None else {failed, ended}
            try:
                await asyncio.wait(waits, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when cancelled: asyncio.wait leaves what it waited on pending
                failed.cancel()
        if self._error is not None:
            raise self._error

    def _flush(self) -> None:
        self._scheduled = False
        events, self._events = self._events, []
        if not events or self._deliver is None:
            return
        try:
            self._deliver(events)
        except Exception as exc:  # noqa: BLE001 - raised by failed_within: the session ends
            self._deliver = None
            self._error = exc
            self._failed.set()


def _reason(exc: BaseException) -> str:
    """What went wrong; a refused subscribe shows in ccxt as KeyError('spot') with the
    exchange's answer in its context."""
    if isinstance(exc, KeyError) and exc.__context__ is not None:
        exc = exc.__context__
    if isinstance(exc, Exception):
        return describe(exc)
    return type(exc).__name__
