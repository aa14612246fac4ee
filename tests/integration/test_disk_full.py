"""The disk can fail: a full disk halts submits with a retryable answer, nothing goes to
the exchange that the ledger did not take, and the daemon resumes once there is room.

The state_dir is a small tmpfs of its own that the test fills for real; mounting it
needs root (the test is skipped otherwise)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from protocol.client import OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import KEY, SECRET, DaemonProcess, VenueProcess, market_buy, wait_until

SIZE = "2m"
"""The state_dir's file system: the ledger and some room, then the filler takes the rest."""


@contextmanager
def small_disk(path: Path) -> Iterator[Path]:
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """A file that takes every free block of the file system."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    with suppress(OSError):
        while True:  # the last partial blocks
            os.write(fd, b"\0" * 512)
    os.close(fd)
    return filler


def submit(client: OrderdClient, cid: str) -> ProtocolError | None:
    try:
        client.submit(market_buy("0.01", client_order_id=cid), wait="durable")
    except ProtocolError as exc:
        return exc
    return None


def test_a_full_disk_halts_submits_until_there_is_room(tmp_path: Path) -> None:
    venue = VenueProcess(tmp_path / "venue")
    workdir = tmp_path / "orderd"
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 f'api_key = "{KEY}"\nsecret = "{SECRET}"\n')
    try:
        with small_disk(workdir / "state") as state:
            daemon = DaemonProcess(workdir, exchanges=exchanges).start()
            try:
                check_full_disk(daemon, state, venue)
            finally:
                daemon.stop()
    finally:
        venue.stop()


def check_full_disk(daemon: DaemonProcess, state: Path, venue: VenueProcess) -> None:
    client = daemon.client()
    assert client.submit(market_buy("0.01", client_order_id="room-0"))["status"] == "filled"
    filler = fill(state)
    refused: list[str] = []
    for n in range(200):
        error = submit(client, f"full-{n}")
        if error is not None:
            assert error.code == "halted" and error.retryable and error.retry_after_s
            refused.append(f"full-{n}")
            break
    assert refused, "a submit was refused once the disk was full"
    assert client.ping()["state"] == "halted"
    health = client.health()
    assert "database or disk is full" in health["conditions"]["ledger_unwritable"]
    again = submit(client, "while-full")
    assert again is not None and again.code == "halted"
    refused.append("while-full")
    assert client.status(client_order_id="room-0")["status"] == "filled", "reads still work"
    assert "ALERT ledger_unwritable [critical]" in daemon.log.read_text()

    filler.unlink()
    wait_until(lambda: client.ping()["state"] == "ready", "submits to resume by themselves")
    assert "ALERT ledger_writable [info]" in daemon.wait_for_log("ledger_writable")
    for cid in refused:  # the retry the error invited
        assert submit(client, cid) is None
    assert submit(client, "room-1") is None

    known = {o["client_order_id"]: o for o in client.list(limit=1000)["orders"]}
    wait_until(lambda: all(client.status(client_order_id=c)["status"] == "filled"
                           for c in known), "every order to fill")
    on_venue = [o["clientOrderId"] for o in venue.orders()]
    assert sorted(on_venue) == sorted(known), "each recorded order sent once, no other"
