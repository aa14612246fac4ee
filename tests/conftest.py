from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import DaemonProcess, VenueProcess, kill_leftovers, running_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One real orderd process shared by a test module."""
    with running_daemon(tmp_path_factory.mktemp("orderd")) as running:
        yield running


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    """One real `orderd paper-venue` process (binance dialect) shared by a test module."""
    running = VenueProcess(tmp_path_factory.mktemp("venue"))
    yield running
    running.stop()


@pytest.fixture(autouse=True, scope="module")
def no_daemon_outlives_its_module() -> Iterator[None]:
    """A test that fails half way must not leave a daemon running after the suite."""
    yield
    kill_leftovers()
