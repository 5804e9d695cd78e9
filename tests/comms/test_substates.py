"""The protocol's sub-states on their own: each part of the conversation and its transitions."""

from __future__ import annotations

from doseprint.comms.framing import program_from_gcode
from doseprint.comms.preflight import plan_preflight
from doseprint.comms.protocol import (
    BUSY_GRACE_S,
    RESEND_OK_GRACE_S,
    STALE_SETTLE_S,
    Handshake,
    MarlinProtocol,
    OkWait,
    Ping,
    Poll,
    ProtocolState,
    ResendRecovery,
)


def test_handshake_ends_only_on_an_ok_after_the_name() -> None:
    handshake = Handshake()
    assert handshake.ok_ends_round()  # a firmware that never names itself
    handshake.send()
    handshake.named(in_handshake=True)
    handshake.round_has_name = True
    assert handshake.ok_ends_round()
    handshake.send()  # a repeated M115: the stray ok before its answer does not end it
    assert not handshake.ok_ends_round()
    # Its late answer after the handshake: the ok that follows acknowledges no line.
    handshake.named(in_handshake=False)
    assert handshake.take_swallowed_ok() and not handshake.take_swallowed_ok()


def test_ok_wait_stretches_for_busy_and_is_overdue_after_wait() -> None:
    wait = OkWait()
    assert wait.budget_s(1.0) == 1.0 and wait.budget_s(None) is None
    wait.busy_seen = True
    assert wait.budget_s(1.0) == BUSY_GRACE_S and wait.budget_s(None) is None
    wait.overdue_now = True
    assert wait.budget_s(None) == 0.0


def test_ping_proves_lost_only_lines_sent_before_it() -> None:
    ping = Ping(mark=5)
    assert ping.proves_lost(3, next_line=7)
    assert not ping.proves_lost(5, next_line=7)
    assert not ping.proves_lost(3, next_line=3)


def test_poll_replaced_by_a_ping_leaves_one_late_ok() -> None:
    poll = Poll()
    poll.request()
    poll.go_out(sent_max=4)
    assert (poll.due, poll.pending, poll.polled_at) == (False, True, 4)
    poll.request()  # one is out already
    assert not poll.due
    poll.replaced_by_ping()
    assert not poll.pending
    assert poll.take_late_ok() and not poll.take_late_ok()


def test_resend_recovery_holds_then_settles() -> None:
    recovery = ResendRecovery()
    recovery.expect_ok()
    assert recovery.hold_s() == RESEND_OK_GRACE_S
    assert recovery.hold_expired() and recovery.sends_ok is False  # none came
    recovery.expect_ok()  # this firmware prints none: nothing more is awaited
    assert not recovery.ok_pending and recovery.hold_s() is None
    recovery.expect_stale(7, in_flight_behind=2)
    assert recovery.hold_s() == STALE_SETTLE_S
    assert recovery.absorb_stale(7, line_number_error=True)
    assert not recovery.absorb_stale(7, line_number_error=False)
    assert recovery.absorb_stale(7, line_number_error=True)
    assert not recovery.settle_pending and not recovery.absorb_stale(7, line_number_error=True)
    recovery.throttle_until = 7
    assert recovery.one_at_a_time(acked=6) and not recovery.one_at_a_time(acked=7)


def test_the_preflight_runs_between_handshake_and_streaming() -> None:
    program = program_from_gcode("M83\nT0\nT1\nG1 X1 E1\n")
    plan = plan_preflight(program, "marlin")
    assert plan.probes
    protocol = MarlinProtocol(list(program.commands), preflight=plan)
    assert protocol.next_to_send() == "M115"
    protocol.on_reply("ok")
    assert protocol.state is ProtocolState.PREFLIGHT
    for probe in plan.probes:
        assert protocol.next_to_send() == probe.command
        assert protocol.next_to_send() is None  # one at a time
        protocol.on_reply("ok")
    assert protocol.state is ProtocolState.STREAMING
    assert protocol.probes_sent == len(plan.probes)
    assert protocol.next_to_send() == "N0 M110 N0*125"
