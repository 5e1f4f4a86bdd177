"""The emulated server's latency: drawn in its configured range, repeatable with a seed."""

from __future__ import annotations

from callcenter.emulator import REALISTIC_SERVER, EmulatedCall, Emulator, Pacing
from callcenter.emulator.channel import Channel
from callcenter.emulator.session_state import SessionState


def delays(pacing: Pacing, count: int = 6) -> list[float]:
    """A new call's first response delays, alternating requested and automatic ones."""
    call = EmulatedCall("rtc_timings", "+14155550123", "+18005550100")
    state = SessionState(call, Channel(call), pacing)
    return [state.response_delay(automatic=n % 2 == 1) for n in range(count)]


def test_server_timings_fall_in_their_ranges_and_repeat_with_the_seed() -> None:
    """Requested responses wait 300-600 ms, automatic ones 400-900 ms; the same seed, the same."""
    drawn = delays(REALISTIC_SERVER)
    assert all(0.3 <= delay <= 0.6 for delay in drawn[0::2])
    assert all(0.4 <= delay <= 0.9 for delay in drawn[1::2])
    assert delays(REALISTIC_SERVER) == drawn
    assert delays(Pacing(requested_response=(0.3, 0.6), turn_response=(0.4, 0.9), seed=1)) != drawn


def test_by_default_the_server_answers_at_once() -> None:
    """The default pacing (the tests') draws no delay."""
    assert delays(Pacing()) == [0.0] * 6


async def test_a_call_may_bring_its_own_server_timings(emulator: Emulator) -> None:
    """place_call(server_timings=...) sets that call's server latency, keeping the other pacing."""
    emulator.pacing = Pacing(delta_interval=0.01)
    realistic = emulator.place_call(server_timings="realistic")
    plain = emulator.place_call()
    for call in (realistic, plain):
        emulator.call_accepted(call)
    paced = emulator.conversations[realistic.call_id].pacing
    assert (paced.requested_response, paced.turn_response) == (
        REALISTIC_SERVER.requested_response,
        REALISTIC_SERVER.turn_response,
    )
    assert paced.delta_interval == 0.01
    assert emulator.conversations[plain.call_id].pacing == emulator.pacing
