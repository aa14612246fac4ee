"""CircuitActor: owns the breakers; grants trial calls and records outcomes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.circuit.breakers import NAME, Circuits
from actors.circuit.messages import DescribeCircuits, MayCall, Outcome, Permit
from actors.supervisor import Registry, SupervisedActor


class CircuitActor(SupervisedActor):
    """One thread owns every breaker, so pybreaker's lock is never contended."""

    def __init__(self, registry: Registry, circuits: Circuits) -> None:
        super().__init__(registry, NAME)
        # kept outside the actor, so a restart does not forget an open circuit
        self.circuits = circuits
        self._handlers: dict[type, Callable[[Any], Any]] = {
            MayCall: self._may_call, Outcome: self.circuits.record,
            DescribeCircuits: self._describe,
        }

    def _may_call(self, msg: MayCall) -> Permit:
        return self.circuits.may_call(msg.exchange)

    def _describe(self, msg: DescribeCircuits) -> None:
        msg.reply(self.circuits.describe())
