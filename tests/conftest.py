from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import DaemonProcess, running_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One real orderd process shared by a test module."""
    with running_daemon(tmp_path_factory.mktemp("orderd")) as running:
        yield running
