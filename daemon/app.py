"""The daemon: the actor system plus its sockets, schedule, systemd and lifecycle."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from actors.metrics.alerts import Alerter
from actors.order.risk import RiskPolicy
from actors.reconcile.actor import NAME as RECONCILER
from actors.reconcile.actor import ScheduledRuns
from actors.reconcile.messages import RunReconciliation
from actors.runtime import Clock, DaemonState
from actors.supervisor import Registry
from daemon import __version__
from daemon.commands import Commands
from daemon.config import Config
from daemon.events import ZmqPublisher
from daemon.frontend import Frontend
from daemon.limits import client_rates, describe, risk_limits
from daemon.logs import set_level
from daemon.rate_limit import ClientRateLimiter
from daemon.reload import Reloader
from daemon.security import Curve, RefusalWatch
from daemon.startup import bind
from daemon.system import ActorSystem
from daemon.systemd import PING_TIMEOUT_S, Heartbeat, Notifier, SystemdLoop, watchdog_interval_s
from daemon.wiring import ClientFactory

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0
ESCALATED_DRAIN_S = 0.5
"""After a restart storm the process exits within a second or two: requests still in
flight after this are answered as the actors stop (held submits with their orders as
recorded)."""
EXIT_ESCALATED = 70


class Daemon:
    """One running orderd: start, serve, reload, stop."""

    def __init__(self, config: Config, clock: Clock | None = None,
                 alerter: Alerter | None = None,
                 clients: dict[str, ClientFactory] | None = None,
                 config_path: Path | None = None) -> None:
        """`clients` replaces the configured client of an exchange (embedding, tests);
        `config_path` is re-read on reload."""
        self.config = config
        self.clock = clock or Clock()
        self.context: zmq.Context[Any] = zmq.Context()
        self.exit_code = 0
        self._stop = threading.Event()
        self.on_stop_request: Callable[[], None] = lambda: None
        """Called when the daemon asks to be stopped (escalation), from any thread: the
        owner of the process then calls `stop`."""
        self.risk = RiskPolicy(risk_limits(config))
        self.limiter = ClientRateLimiter(client_rates(config), self.clock.monotonic)
        self.reloader = Reloader(config, config_path)
        self.refusals = RefusalWatch()
        self.notifier = Notifier()
        self.curve: Curve | None = None
        self.frontend: Frontend | None = None
        self.events: ZmqPublisher | None = None
        self.scheduled: ScheduledRuns | None = None
        self.systemd: SystemdLoop | None = None
        self.system = ActorSystem(config, clock=self.clock, alerter=alerter, clients=clients,
                                  risk=self.risk, escalate=self._escalate)

    @property
    def state(self) -> DaemonState:
        return self.system.state

    @property
    def registry(self) -> Registry:
        return self.system.registry

    def start(self) -> None:
        """Take the state_dir, bind every socket, start the actors and serve; `ready`
        (and READY=1) once orders left unresolved are resolved. Raises StateDirInUse
        before anything is touched, StartupError naming the key of a socket or port
        that cannot be bound before any actor starts; the caller then calls `stop`."""
        self.system.lock.acquire()
        control = self.config.control
        if control.curve_secret_key_file and control.curve_clients_dir:
            self.curve = Curve(self.context, control.curve_secret_key_file,
                               control.curve_clients_dir)
        endpoint = self.config.events.endpoint
        self.events = bind("events.endpoint", endpoint,
                           lambda: ZmqPublisher(self.context, endpoint, self.curve))
        self.frontend = bind("control.endpoint", control.endpoint, self._frontend)
        if self.curve is not None:  # monitors go on before another thread uses the socket
            self.refusals.watch("events", self.events.socket)
            self.refusals.watch("control", self.frontend.socket)
            self.refusals.start()
        self.system.events = self.events
        self.system.start()
        self.system.guard_start()
        self.frontend.start()
        self.scheduled = ScheduledRuns(self.registry, self.config.schedule)
        self.scheduled.start()
        if self.config.reconciliation.run_on_start:
            self.registry.tell(RECONCILER, RunReconciliation())
        self._register_reload_hooks()
        self.system.wait_recovered(self._stop)
        if self._stop.is_set():  # a stop was asked for (signal, escalation) meanwhile
            return
        self.state.running()
        self.notifier.ready()
        interval = watchdog_interval_s()
        heartbeat = Heartbeat(self.registry, min(PING_TIMEOUT_S, (interval or 2.0) / 2),
                              {"frontend": self.frontend.turning})
        self.systemd = SystemdLoop(self.notifier, heartbeat, self._summary, interval)
        self.systemd.start()
        log.info("orderd %s ready: commands on %s, events on %s%s", __version__, control.endpoint,
                 self.config.events.endpoint, " (CURVE)" if self.curve else "")

    def _frontend(self) -> Frontend:
        """The command socket, bound; it serves once started."""
        control = self.config.control
        commands = Commands(self.registry, self.state, self.system.markets,
                            [e.name for e in self.config.exchanges], self.system.board,
                            drivers={e.name: e.driver for e in self.config.exchanges},
                            limiter=self.limiter, refused=lambda: self.refusals.refused,
                            fault_commands=self.config.supervisor.fault_commands,
                            budgets=self.system.budgets,
                            streams=self.system.streams.snapshot)
        return Frontend(self.context, control.endpoint, control.max_request_bytes,
                        commands.handlers(), self.curve)

    def _summary(self) -> str:
        """One line for systemd's STATUS=."""
        reason = f" ({self.state.reason})" if self.state.reason else ""
        return f"{self.state.value}{reason}; commands on {self.config.control.endpoint}"

    def _escalate(self, reason: str) -> None:
        """A restart storm: halt submits, then stop (flushing the ledger) and exit non-zero.
        Not a recorded halt: the restart that follows is the remedy."""
        self.state.condition("restart_storm", reason)
        self.exit_code = EXIT_ESCALATED
        self.request_stop()

    # --- reload --------------------------------------------------------------------

    def _register_reload_hooks(self) -> None:
        self.reloader.register(self._reload_log_level)
        self.reloader.register(self._reload_risk)
        self.reloader.register(self.system.reload_alerts)
        if self.curve is not None:
            self.reloader.register(self._reload_clients)

    def _reload_clients(self, _config: Config) -> str:
        """Re-read the CURVE client keys. The front end checks every request's key, so
        a removed one is refused at once; event subscribers are checked only at their
        handshake, so a removal makes them all handshake again."""
        assert self.curve is not None
        before = self.curve.allowed
        done = self.curve.reload_clients()
        if before - self.curve.allowed and self.events is not None:
            self.events.rebind()
            done += "; a key was removed: event subscribers reconnect"
        return done

    def _reload_log_level(self, config: Config) -> str:
        set_level(config.log_level)
        return f"log level {config.log_level.upper()}"

    def _reload_risk(self, config: Config) -> str:
        """Replace the limits as a whole: `config` names every running exchange, each
        with its limits from the file where the file names it, else its own."""
        self.risk.replace(risk_limits(config))
        self.limiter.set_rates(client_rates(config))
        return f"risk limits {describe(config)}"

    def reload(self) -> None:
        """SIGHUP: apply what is safe to change without a restart. A failure that is no
        bad file (a bug, or a check the loader does not turn into a ConfigError) is
        logged: a reload must never end the daemon that serves orders."""
        self.notifier.reloading()
        try:
            self.reloader.reload()
        except Exception:
            log.exception("reload failed, possibly part-way: the daemon goes on; see the "
                          "error, then reload again or restart")
        finally:
            self.notifier.ready()

    # --- stop --------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        self.on_stop_request()

    def wait(self, timeout: float | None = None) -> bool:
        """Until a stop is requested (signal, escalation); False on timeout."""
        return self._stop.wait(timeout)

    def stop(self) -> None:
        """Refuse new submits; finish and commit what is in flight; stop actors in reverse."""
        log.info("orderd stopping")
        self.notifier.stopping()
        if self.systemd is not None:
            self.systemd.stop()
        self._stop.set()
        self.state.set("stopping")
        if self.frontend is not None:
            escalated = self.exit_code == EXIT_ESCALATED
            self._drain(self.frontend, ESCALATED_DRAIN_S if escalated else DRAIN_TIMEOUT_S)
        if self.scheduled is not None:
            self.scheduled.shutdown()
        self.system.stop()
        self.refusals.close()
        for part in (self.frontend, self.events):
            if part is not None:
                part.close()
        if self.curve is not None:
            self.curve.stop()
        self.context.term()
        self.notifier.close()
        log.info("orderd stopped")

    def _drain(self, frontend: Frontend, timeout_s: float) -> None:
        deadline = self.clock.monotonic() + timeout_s
        pause = threading.Event()
        while frontend.in_flight() > 0 and self.clock.monotonic() < deadline:
            pause.wait(0.01)
