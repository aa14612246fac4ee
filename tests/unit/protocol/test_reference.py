"""docs/protocol.md says what protocol/reference.py says, and the table says what the
daemon does: its commands, statuses, error codes and limits."""

from __future__ import annotations

import time
from decimal import Decimal

from actors.circuit.breakers import CircuitBoard
from actors.orders import Order
from actors.registry import Registry
from actors.runtime import DaemonState
from daemon.commands import Commands
from daemon.config import load_config
from protocol.codec import DEFAULT_MAX_REQUEST_BYTES
from protocol.docs import BEGIN, END, PAGE, REGENERATE, render, splice
from protocol.errors import RETRYABLE
from protocol.messages import STATUSES, OrderType, Side, TimeInForce
from protocol.reference import (
    COMMANDS,
    ERRORS,
    ORDER_DESCRIPTION,
    ORDER_SPEC,
    TEST_ONLY_COMMANDS,
)
from protocol.reference import (
    STATUSES as STATUS_MEANINGS,
)
from protocol.validation import ARG_PARSERS, ORDER_FIELDS


def test_the_page_holds_the_generated_reference_unchanged() -> None:
    page = PAGE.read_text(encoding="utf-8")
    assert splice(page, render()) == page, (
        f"docs/{PAGE.name} differs from protocol/reference.py: regenerate it with "
        f"`{REGENERATE}` (edit the table, not the page between the markers)")


def test_the_generated_section_is_the_one_between_the_markers() -> None:
    page = f"before\n{BEGIN}\nold\n{END}\nafter\n"
    assert splice(page, render()) == f"before\n{render()}after\n"


def test_the_table_lists_the_commands_the_daemon_serves() -> None:
    commands = Commands(Registry(), DaemonState(), {}, ["paper"],
                        CircuitBoard(["paper"], time.monotonic), drivers={})
    documented = [command.name for command in COMMANDS]
    assert len(documented) == len(set(documented))
    assert set(documented) == set(commands.handlers())
    assert set(ARG_PARSERS) == set(documented) | set(TEST_ONLY_COMMANDS)
    with_faults = Commands(Registry(), DaemonState(), {}, ["paper"],
                           CircuitBoard(["paper"], time.monotonic), drivers={},
                           fault_commands=True)
    assert set(with_faults.handlers()) == set(documented) | set(TEST_ONLY_COMMANDS)


def test_the_table_lists_every_error_code_status_and_order_field() -> None:
    assert set(ERRORS) == set(RETRYABLE)
    assert [status for status, _ in STATUS_MEANINGS] == list(STATUSES)
    assert {name for name, _, _ in ORDER_SPEC} == set(ORDER_FIELDS)


def test_the_documented_request_limit_is_the_default() -> None:
    assert load_config(None).control.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES


def test_the_order_description_names_every_field_a_reply_carries() -> None:
    order = Order("cid-1", "paper", "BTC/USD", Side.BUY, OrderType.LIMIT, Decimal("1"),
                  Decimal("2"), TimeInForce.GTC, {})
    assert [key for key in order.to_wire() if f"`{key}`" not in ORDER_DESCRIPTION] == []
