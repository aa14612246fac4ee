"""Amounts and prices are bounded before anything is recorded: whatever passes can be
written to the ledger, put on the wire and handed to a driver as a float exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.codec import format_decimal, loads
from protocol.errors import ProtocolError
from protocol.validation import parse_order_spec


def limit_order(amount: object, price: object = "100") -> dict[str, object]:
    return {"symbol": "BTC/USD", "side": "buy", "type": "limit", "amount": amount,
            "price": price}


@pytest.mark.parametrize("value", [
    "999999999999999", "0.000000000000000001", "1e-18", "123456789012.345",
    "0.123456789012345", "1.000000000000000000000000", "100000000000000.0000", "5E+3",
    Decimal("0.1"), 7,
])
def test_values_within_bounds_are_taken_as_they_are(value: object) -> None:
    spec = parse_order_spec(limit_order(value, value))
    assert spec.amount == Decimal(str(value)) and spec.price == Decimal(str(value))


@pytest.mark.parametrize("value,says", [
    ("1e999999999", "less than 10^15"),
    ("1e1000000", "less than 10^15"),
    ("1e15", "less than 10^15"),
    ("1000000000000000", "less than 10^15"),
    ("123456789012345.6", "significant digits"),
    ("0.1234567890123456", "significant digits"),
    ("1e-19", "after the decimal point"),
    ("0." + "0" * 5000 + "1", "after the decimal point"),
    (Decimal("1E-999999999"), "after the decimal point"),
    (10**20, "less than 10^15"),
])
@pytest.mark.parametrize("field", ["amount", "price"])
def test_values_beyond_bounds_are_invalid_orders_naming_the_field(
        value: object, says: str, field: str) -> None:
    order = limit_order("1", "1")
    order[field] = value
    with pytest.raises(ProtocolError) as refused:
        parse_order_spec(order)
    assert refused.value.code == "invalid_order"
    assert refused.value.details == {"field": field}
    assert says in refused.value.message


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("1e-30"),
                   max_value=Decimal("1e30")))
def test_whatever_is_accepted_formats_and_survives_a_float(value: Decimal) -> None:
    try:
        spec = parse_order_spec(limit_order(str(value)))
    except ProtocolError as refused:
        assert refused.code == "invalid_order"
        return
    text = format_decimal(spec.amount)
    assert Decimal(text) == value
    assert Decimal(repr(float(spec.amount))) == value  # what a ccxt driver is handed


@pytest.mark.parametrize("text", ["0.01", "1e-3", "1E2", ".5", "5.", "+1"])
def test_a_decimal_string_as_any_language_writes_it_is_read(text: str) -> None:
    assert parse_order_spec(limit_order(text)).amount == Decimal(text)


@pytest.mark.parametrize("text", [
    "1_000",  # Python's digit grouping
    "\u0661", "\uff11",  # an Arabic-Indic and a full-width one
    " 0.01", "0.01\n",
    "NaN", "Infinity", "0x10", "1e", "", ".",
])
def test_what_only_python_reads_as_a_decimal_is_an_invalid_order(text: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_order_spec(limit_order(text))
    assert refused.value.code == "invalid_order"
    assert refused.value.details == {"field": "amount"}
    assert "not a decimal number" in refused.value.message


@pytest.mark.parametrize("number", [
    "1e1000000",  # too large to write out: the writing failed, answered `internal`
    "1e999999999999999999999999", "-1e999999999999999999999999",  # read as infinities
    "1e15", "1e-19",
])
def test_a_number_in_params_is_bounded_as_an_amount_naming_its_key(number: str) -> None:
    order = limit_order("1")
    order["params"] = {"x": [{"y": loads(number)}]}
    with pytest.raises(ProtocolError) as refused:
        parse_order_spec(order)
    assert refused.value.code == "invalid_order"
    assert refused.value.details == {"field": "params.x"}


def test_a_number_in_params_within_bounds_is_kept_as_a_decimal_string() -> None:
    order = limit_order("1")
    order["params"] = {"x": [{"y": loads("2.50e1")}], "z": loads("-0.5")}
    assert parse_order_spec(order).params == {"x": [{"y": "25"}], "z": "-0.5"}
