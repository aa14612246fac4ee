"""The daemon: the actor system plus its sockets, schedule and process lifecycle."""

from __future__ import annotations

import logging
import threading
from typing import Any

import zmq

from actors.alerts import Alerter
from actors.reconcile_messages import RunReconciliation
from actors.reconciler_actor import NAME as RECONCILER
from actors.reconciler_actor import ScheduledRuns
from actors.runtime import Clock
from daemon.commands import Commands
from daemon.config import Config
from daemon.events import ZmqPublisher
from daemon.frontend import Frontend
from daemon.system import ActorSystem, ClientFactory, schedule_of

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0
EXIT_ESCALATED = 70


class Daemon:
    """One running orderd: start, serve, stop."""

    def __init__(self, config: Config, clock: Clock | None = None,
                 alerter: Alerter | None = None,
                 clients: dict[str, ClientFactory] | None = None) -> None:
        """`clients` replaces the configured client of an exchange (embedding, tests)."""
        self.config = config
        self.clock = clock or Clock()
        self.context: zmq.Context[Any] = zmq.Context()
        self.exit_code = 0
        self._stop = threading.Event()
        self._alerter = alerter
        self._clients = clients
        self.frontend: Frontend | None = None
        self.events: ZmqPublisher | None = None
        self.scheduled: ScheduledRuns | None = None
        self.system: ActorSystem | None = None

    @property
    def state(self) -> Any:
        assert self.system is not None
        return self.system.state

    @property
    def registry(self) -> Any:
        assert self.system is not None
        return self.system.registry

    def start(self) -> None:
        """Serve; `ready` once orders left unresolved by the last run are resolved."""
        self.events = ZmqPublisher(self.context, self.config.events.endpoint)
        self.system = system = ActorSystem(
            self.config, clock=self.clock, alerter=self._alerter, events=self.events,
            clients=self._clients, escalate=self._escalate)
        system.start()
        commands = Commands(system.registry, system.state, system.markets,
                            [e.name for e in self.config.exchanges], system.board)
        self.frontend = Frontend(self.context, self.config.control.endpoint,
                                 self.config.control.max_request_bytes, commands.handlers())
        self.frontend.start()
        self.scheduled = ScheduledRuns(system.registry, schedule_of(self.config))
        self.scheduled.start()
        if self.config.reconciliation.run_on_start:
            system.registry.tell(RECONCILER, RunReconciliation())
        system.wait_recovered(self._stop)
        system.state.set("ready")
        log.info("orderd ready: commands on %s, events on %s",
                 self.config.control.endpoint, self.config.events.endpoint)

    def _escalate(self, reason: str) -> None:
        """A restart storm: halt submits, then stop (flushing the ledger) and exit non-zero."""
        self.state.set("halted", reason)
        self.exit_code = EXIT_ESCALATED
        self._stop.set()

    def request_stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Until a stop is requested (signal, escalation); False on timeout."""
        return self._stop.wait(timeout)

    def stop(self) -> None:
        """Refuse new submits; finish and commit what is in flight; stop actors in reverse."""
        log.info("orderd stopping")
        self._stop.set()
        if self.system is not None:
            self.system.state.set("stopping")
        if self.frontend is not None:
            self._drain(self.frontend)
        if self.scheduled is not None:
            self.scheduled.shutdown()
        if self.system is not None:
            self.system.stop()
        if self.frontend is not None:
            self.frontend.close()
        if self.events is not None:
            self.events.close()
        self.context.term()
        log.info("orderd stopped")

    def _drain(self, frontend: Frontend) -> None:
        deadline = self.clock.monotonic() + DRAIN_TIMEOUT_S
        pause = threading.Event()
        while frontend.in_flight() > 0 and self.clock.monotonic() < deadline:
            pause.wait(0.01)


__all__ = ["EXIT_ESCALATED", "Daemon"]
