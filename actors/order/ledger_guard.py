"""How OrderActor keeps the ledger honest about itself: commits the disk refuses, a
ledger file removed or replaced under it, and the record of a halt.

A commit that fails (disk full, I/O error) halts submits while it lasts (a
condition of the daemon's state, see `DaemonState`) and is tried again every tick;
the first commit that succeeds ends the halt by itself. A ledger file that is no
longer the one open here halts submits for as long as that holds: what the daemon
writes would go where no restart finds it. What the open ledger holds is copied
next to it, so nothing acknowledged is lost.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from actors.ledger.store import Ledger
from actors.metrics.alerts import Alert, Alerter
from actors.order.batch import Batch
from actors.runtime import AUTOMATIC, OPERATOR, Clock, DaemonState
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

UNWRITABLE = "ledger_unwritable"
"""The condition (and alert) of a ledger whose commits fail."""
WRITABLE = "ledger_writable"
"""The alert that commits succeed again."""
REPLACED = "ledger_replaced"
"""The condition (and alert) of a ledger file removed or replaced while open."""
HALT_KEY = "halt"
"""Meta key: the reason of the halt in force ("" when none)."""
HALT_BY_KEY = "halt_by"
"""Meta key: who made that halt (OPERATOR or AUTOMATIC), so a restart pages alike."""
PROBE_KEY = "written_at"
"""Meta key written while commits fail, so each try shows whether the disk is back."""
RETRY_AFTER_S = 1.0
"""retry_after_s of the answers refused while the ledger cannot be written."""


class LedgerGuard:
    """Used from OrderActor's thread only."""

    def __init__(self, ledger: Ledger, batch: Batch, state: DaemonState, alerter: Alerter,
                 clock: Clock) -> None:
        self.ledger = ledger
        self.batch = batch
        self.state = state
        self.alerter = alerter
        self.clock = clock
        self.failing_since: float | None = None
        self.replaced = False
        self.rescue: Path | None = None
        """Where the open ledger was copied once its file was replaced."""
        self.recorded_halt = ledger.meta(HALT_KEY) or None

    # --- commits the disk refuses -------------------------------------------------------

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def failed(self, exc: sqlite3.Error) -> ProtocolError:
        """A commit failed: halt submits (once) and say what the waiting clients get."""
        problem = f"the ledger cannot be written ({exc}); submits are halted until it can"
        if self.failing_since is None:
            self.failing_since = self.clock.monotonic()
            log.error("%s; trying again every tick", problem)
            self.alerter.alert(Alert(UNWRITABLE, "critical", problem,
                                     {"path": str(self.ledger.path)}))
            self.state.condition(UNWRITABLE, problem)
        return ProtocolError("halted", problem, retry_after_s=RETRY_AFTER_S)

    def written(self) -> None:
        """A commit succeeded: submits resume if commits failed until now."""
        if self.failing_since is None:
            return
        failed_s = self.clock.monotonic() - self.failing_since
        self.failing_since = None
        message = f"the ledger can be written again after {failed_s:.1f} s; submits resume"
        log.warning("%s", message)
        self.alerter.alert(Alert(WRITABLE, "info", message, {"path": str(self.ledger.path)}))
        self.state.condition(UNWRITABLE, None)

    def probe(self) -> None:
        """While commits fail: something to write on the next try, so a try that
        succeeds proves the disk is back."""
        if self.failing and not self.ledger.dirty:
            self.ledger.stage_meta(PROBE_KEY, str(self.clock.now()))
            self.batch.pending = True

    # --- the ledger's file ----------------------------------------------------------------

    def check_file(self) -> None:
        """Each tick: the file at the ledger's path must be the one open here."""
        replaced = self.ledger.replaced()
        if replaced == self.replaced:
            return
        self.replaced = replaced
        path = self.ledger.path
        if not replaced:
            log.warning("the ledger file %s is back; submits resume", path)
            self.state.condition(REPLACED, None)
            return
        self.copy_out()
        kept = (f"what it held is copied to {self.rescue}: stop orderd, move that copy to "
                f"{path.name} and start again" if self.rescue is not None
                else "copying what it held failed (see the log)")
        problem = f"the ledger file {path} was removed or replaced; submits are halted; {kept}"
        log.critical("%s", problem)
        self.alerter.alert(Alert(REPLACED, "critical", problem, {"path": str(path)}))
        self.state.condition(REPLACED, problem)

    def copy_out(self) -> None:
        """Copy what the open ledger holds beside its path (again at stop, complete)."""
        target = self.rescue or self.ledger.path.with_name(
            f"ledger-rescued-{int(self.clock.now())}.sqlite")
        try:
            self.ledger.copy_to(target)
        except (sqlite3.Error, OSError) as exc:
            log.error("the open ledger could not be copied to %s: %s", target, exc)
            return
        self.rescue = target

    # --- the record of a halt -------------------------------------------------------------

    def load_halt(self) -> None:
        """On the first start in this process, a halt recorded by an earlier run holds."""
        if self.state.halt_loaded:
            return
        self.state.halt_loaded = True
        if self.recorded_halt is not None:
            by = self.ledger.meta(HALT_BY_KEY)
            self.state.halt(self.recorded_halt, OPERATOR if by == OPERATOR else AUTOMATIC)
            log.warning("halted since an earlier run (%s); `resume` ends it",
                        self.recorded_halt)

    def record_halt(self) -> None:
        """Make the ledger's record of the halt what the daemon's state says (with the
        next commit, which waits for the disk)."""
        reason = self.state.halt_reason
        if reason == self.recorded_halt:
            return
        self.ledger.stage_meta(HALT_KEY, reason or "")
        self.ledger.stage_meta(HALT_BY_KEY, self.state.halt_by or "")
        self.batch.sync_next()
        self.recorded_halt = reason
