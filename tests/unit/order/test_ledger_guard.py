"""What a failed commit takes back, how a replaced ledger file shows, and the daemon
state's halts and conditions."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from actors.ledger.store import Ledger
from actors.order.batch import Batch
from actors.runtime import DaemonState
from protocol.errors import ProtocolError
from tests.recon_support import ledger_order
from tests.unit.ledger.test_ledger import Published, RecordingLedger


def test_a_failed_commit_takes_back_new_orders_and_fails_their_replies(tmp_path: Path) -> None:
    ledger, events = RecordingLedger(tmp_path / "ledger.sqlite"), Published()
    batch = Batch(ledger, events)
    batch.stage(ledger_order("od-old", status="open"))
    batch.flush()
    answers: list[object] = []
    batch.stage_new(ledger_order("od-new", status="pending_submit"))
    batch.reply(lambda: answers.append("ok"), answers.append)
    batch.stage(ledger_order("od-old", status="filled"))
    ledger.fail_next = True
    with pytest.raises(sqlite3.OperationalError):
        batch.flush()
    assert batch.drop_new() == ["od-new"]
    error = ProtocolError("halted", "the ledger cannot be written", retry_after_s=1.0)
    batch.fail_replies(error)
    assert answers == [error]

    batch.flush()  # the next try: the old order's outcome, and nothing of the new one
    assert ledger.get("od-new") is None
    old = ledger.get("od-old")
    assert old is not None and old.status == "filled"
    assert events.seqs == [1, 2], "one event each for od-old; none for the dropped order"
    ledger.close()


def test_a_ledger_file_removed_or_replaced_shows_and_its_copy_keeps_the_orders(
        tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.stage(ledger_order("od-kept"))
    ledger.commit()
    assert not ledger.replaced()
    os.replace(path, tmp_path / "moved.sqlite")
    assert ledger.replaced()
    os.replace(tmp_path / "moved.sqlite", path)
    assert not ledger.replaced(), "the same file back in place"
    path.unlink()
    assert ledger.replaced()
    ledger.copy_to(tmp_path / "copy.sqlite")
    copy = Ledger(tmp_path / "copy.sqlite")
    assert copy.get("od-kept") is not None, "what the removed file held"
    copy.close()
    (tmp_path / "other.sqlite").write_bytes(b"")
    os.replace(tmp_path / "other.sqlite", path)
    assert ledger.replaced(), "another file where it was"
    ledger.close()


def test_a_halt_made_while_starting_holds_once_running_and_conditions_outlive_resume() -> None:
    state = DaemonState()
    halts: list[str] = []
    state.on_halt = halts.append
    state.halt("operator")
    assert state.value == "starting" and halts == ["operator"]
    state.running()
    assert state.value == "halted" and state.reason == "operator"
    state.condition("ledger_unwritable", "disk full")
    assert halts == ["operator"], "already halted: no second alert"
    state.resume()
    assert state.value == "halted" and state.reason == "disk full"
    state.condition("ledger_unwritable", None)
    assert state.value == "ready" and state.reason is None
    state.condition("ledger_unwritable", "disk full again")
    assert halts == ["operator", "disk full again"]
    state.set("stopping")
    state.condition("ledger_unwritable", None)
    assert state.value == "stopping"
