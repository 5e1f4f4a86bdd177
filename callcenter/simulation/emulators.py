"""The emulator a simulation drives: one in this process, or one running elsewhere.

:class:`~callcenter.simulation.simulate.Simulator` and its call watchers see the emulator
only as a :class:`DrivenEmulator`: arm a call's faults and place it, hang a call up, bring
a call's records up to date, and how often a webhook is tried. :class:`InProcessEmulator`
wraps the :class:`EmulatorThread` that ``simulate`` and ``demo`` start;
:class:`RemoteEmulator` drives a running emulator (a ``callcenter demo --keep``'s) through
its control API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

from callcenter.emulator import EmulatedCall, EmulatorThread, Step
from callcenter.emulator.client import ControlClient
from callcenter.emulator.faults import Fault
from callcenter.simulation.scenario import CallSpec

__all__ = ["DrivenEmulator", "InProcessEmulator", "RemoteEmulator"]


class DrivenEmulator(Protocol):
    """What a simulation does with the emulator."""

    @property
    def max_attempts(self) -> int:
        """How many times a webhook is delivered before the emulator gives up."""

    def place(
        self,
        spec: CallSpec,
        script: Sequence[Step],
        *,
        call_id: str | None = None,
        faults: Sequence[Fault] = (),
    ) -> EmulatedCall:
        """Arm ``faults`` (bound to ``call_id``), then ring the call ``spec`` describes."""

    def hang_up(self, call_id: str) -> bool:
        """The caller hangs up; False if the call was already over."""

    def refresh(self, call: EmulatedCall) -> None:
        """Bring ``call``'s state and records up to date, in place."""


def call_options(spec: CallSpec, script: Sequence[Step], call_id: str | None) -> dict[str, Any]:
    """The ``place_call`` keywords of the call ``spec`` describes, in either emulator."""
    return {
        "from_number": spec.from_number,
        "to_number": spec.to_number,
        "caller_name": spec.caller_name,
        "headers": spec.headers,
        "script": script,
        "call_id": call_id,
        "delivery": spec.delivery,
        "server_timings": spec.server_timings,
    }


class InProcessEmulator:
    """The emulator running in this process: its records are the calls themselves."""

    def __init__(self, thread: EmulatorThread) -> None:
        self.thread = thread

    @property
    def max_attempts(self) -> int:
        """How many times a webhook is delivered before the emulator gives up."""
        return self.thread.emulator.redelivery.max_attempts

    def place(
        self,
        spec: CallSpec,
        script: Sequence[Step],
        *,
        call_id: str | None = None,
        faults: Sequence[Fault] = (),
    ) -> EmulatedCall:
        """Arm ``faults`` (bound to ``call_id``), then ring the call ``spec`` describes."""
        for fault in faults:
            self.thread.faults.add(fault)
        return self.thread.place_call(**call_options(spec, script, call_id))

    def hang_up(self, call_id: str) -> bool:
        """The caller hangs up; False if the call was already over."""
        return self.thread.caller_hangs_up(call_id)

    def refresh(self, call: EmulatedCall) -> None:
        """Nothing to do: the emulator records straight into ``call``."""


class RemoteEmulator:
    """A running emulator, driven through its control API at ``client.url``."""

    def __init__(self, client: ControlClient, max_attempts: int) -> None:
        self.client = client
        self._max_attempts = max_attempts

    @property
    def max_attempts(self) -> int:
        """How many times a webhook is delivered before the emulator gives up."""
        return self._max_attempts

    def place(
        self,
        spec: CallSpec,
        script: Sequence[Step],
        *,
        call_id: str | None = None,
        faults: Sequence[Fault] = (),
    ) -> EmulatedCall:
        """Arm ``faults`` (bound to ``call_id``), then ring the call ``spec`` describes."""
        for fault in faults:
            self.client.add_fault(fault)
        return self.client.place_call(**call_options(spec, script, call_id))

    def hang_up(self, call_id: str) -> bool:
        """The caller hangs up; False if the call was already over."""
        return self.client.hang_up(call_id)

    def refresh(self, call: EmulatedCall) -> None:
        """Read the call's records again and copy them into ``call``."""
        fresh = self.client.call(call.call_id)
        for spec in dataclasses.fields(call):
            setattr(call, spec.name, getattr(fresh, spec.name))

    def idle(self) -> bool:
        """No call of the emulator is ringing, answered, or still has a sideband attached."""
        return not self.client.live_calls()
