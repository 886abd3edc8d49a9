"""The SLA clock (services/sla.py) as pure functions: due times, pauses, states and their boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.models import SupportTicket, TicketStatus
from portal.services.sla import SlaClock, compute_sla, paused_time, sla_state

S = TicketStatus
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # created_at
H = timedelta(hours=1)
US = timedelta(microseconds=1)
RESPONSE, RESOLUTION = 4, 24  # the contract's hours


def clock(status=S.OPEN, changes=(), first_response_at=None, response=RESPONSE, resolution=RESOLUTION):
    return compute_sla(created_at=T0, status=status, first_response_at=first_response_at,
                       response_hours=response, resolution_hours=resolution, changes=list(changes))


def ticket_with(c: SlaClock, status=S.OPEN, resolved_at=None) -> SupportTicket:
    """A transient ticket carrying the stored clock, as the queue and the ticket page read it."""
    return SupportTicket(status=status, created_at=T0, resolved_at=resolved_at,
                         response_due_at=c.response_due_at, resolution_due_at=c.resolution_due_at,
                         sla_due_at=c.sla_due_at, sla_at_risk_at=c.sla_at_risk_at)


# A log of status moves: opened, work started, waited on the customer twice.
OPENED = [(T0, S.OPEN), (T0 + H, S.ASSIGNED), (T0 + 1.5 * H, S.IN_PROGRESS)]
TWO_PAUSES = OPENED + [
    (T0 + 2 * H, S.WAITING_CUSTOMER), (T0 + 5 * H, S.IN_PROGRESS),  # 3 h
    (T0 + 10 * H, S.WAITING_CUSTOMER), (T0 + 12 * H, S.IN_PROGRESS),  # 2 h
]


class TestNoContract:
    @pytest.mark.parametrize("response, resolution", [(None, None), (4, None), (None, 24)])
    def test_no_contract_hours_no_sla(self, response, resolution):
        assert clock(response=response, resolution=resolution) == SlaClock()

    def test_state_without_sla_is_none(self):
        for status in S:
            assert sla_state(ticket_with(SlaClock(), status=status), T0 + 1000 * H) is None


class TestDueTimes:
    def test_response_and_resolution_due_from_created_at(self):
        c = clock(changes=[(T0, S.OPEN)])
        assert c.response_due_at == T0 + 4 * H
        assert c.resolution_due_at == T0 + 24 * H
        # Before the first response the next deadline is the response one; at risk with 25 % (1 h) left.
        assert c.sla_due_at == T0 + 4 * H
        assert c.sla_at_risk_at == T0 + 3 * H

    def test_after_first_response_the_deadline_is_the_resolution_one(self):
        c = clock(status=S.IN_PROGRESS, changes=OPENED, first_response_at=T0 + 2 * H)
        assert c.response_due_at == T0 + 4 * H
        assert c.sla_due_at == c.resolution_due_at == T0 + 24 * H
        assert c.sla_at_risk_at == T0 + 18 * H  # 25 % of 24 h = 6 h before

    def test_response_due_later_than_resolution_uses_resolution(self):
        c = clock(response=48, resolution=24, changes=[(T0, S.OPEN)])
        assert c.sla_due_at == c.resolution_due_at == T0 + 24 * H
        assert c.sla_at_risk_at == T0 + 18 * H

    def test_two_pauses_both_kept_in_resolution_due(self):
        assert paused_time(TWO_PAUSES) == 5 * H
        c = clock(status=S.IN_PROGRESS, changes=TWO_PAUSES, first_response_at=T0 + 2 * H)
        assert c.resolution_due_at == T0 + (24 + 5) * H
        assert c.sla_due_at == T0 + 29 * H
        assert c.sla_at_risk_at == T0 + 23 * H
        # The response deadline never moves with pauses.
        assert c.response_due_at == T0 + 4 * H

    def test_running_pause_does_not_move_the_due_time_until_it_ends(self):
        waiting = TWO_PAUSES[:-1]  # the second pause has not ended
        assert paused_time(waiting) == 3 * H
        c = clock(status=S.WAITING_CUSTOMER, changes=waiting, first_response_at=T0 + 2 * H)
        assert c.resolution_due_at == T0 + 27 * H
        assert c.sla_due_at is None and c.sla_at_risk_at is None  # paused: no next deadline
        # It ends 5 h after it started: the whole 5 h is added then.
        ended = waiting + [(T0 + 15 * H, S.IN_PROGRESS)]
        assert clock(status=S.IN_PROGRESS, changes=ended, first_response_at=T0 + 2 * H).resolution_due_at \
            == T0 + (24 + 3 + 5) * H

    def test_pause_ended_by_resolving_counts(self):
        changes = OPENED + [(T0 + 2 * H, S.WAITING_CUSTOMER), (T0 + 6 * H, S.RESOLVED)]
        assert paused_time(changes) == 4 * H
        c = clock(status=S.RESOLVED, changes=changes, first_response_at=T0 + 2 * H)
        assert c.resolution_due_at == T0 + 28 * H
        assert c.sla_due_at is None and c.sla_at_risk_at is None

    def test_time_while_resolved_is_not_paused(self):
        reopened = OPENED + [(T0 + 2 * H, S.RESOLVED), (T0 + 30 * H, S.IN_PROGRESS)]
        assert paused_time(reopened) == timedelta()

    def test_no_changes_no_pause(self):
        assert paused_time([]) == timedelta()


class TestStates:
    def test_paused_while_waiting_whatever_the_time(self):
        c = clock(status=S.WAITING_CUSTOMER, changes=TWO_PAUSES[:-1], first_response_at=T0 + 2 * H)
        ticket = ticket_with(c, status=S.WAITING_CUSTOMER)
        for now in (T0, T0 + 26 * H, T0 + 1000 * H):
            assert sla_state(ticket, now) == "paused"

    def test_response_deadline_boundaries(self):
        ticket = ticket_with(clock(changes=[(T0, S.OPEN)]))  # due T0+4h, at risk from T0+3h
        assert sla_state(ticket, T0) == "ok"
        assert sla_state(ticket, T0 + 3 * H - US) == "ok"
        assert sla_state(ticket, T0 + 3 * H) == "at_risk"  # exactly 25 % of the window left
        assert sla_state(ticket, T0 + 4 * H - US) == "at_risk"
        assert sla_state(ticket, T0 + 4 * H) == "breached"  # exactly at the due time
        assert sla_state(ticket, T0 + 100 * H) == "breached"

    def test_resolution_deadline_boundaries_with_pauses(self):
        c = clock(status=S.IN_PROGRESS, changes=TWO_PAUSES, first_response_at=T0 + 2 * H)
        ticket = ticket_with(c, status=S.IN_PROGRESS)  # due T0+29h, at risk from T0+23h
        assert sla_state(ticket, T0 + 23 * H - US) == "ok"
        assert sla_state(ticket, T0 + 23 * H) == "at_risk"
        assert sla_state(ticket, T0 + 29 * H - US) == "at_risk"
        assert sla_state(ticket, T0 + 29 * H) == "breached"

    @pytest.mark.parametrize("status", [S.RESOLVED, S.CLOSED])
    def test_resolved_on_time_met_late_missed(self, status):
        c = clock(status=status, changes=TWO_PAUSES, first_response_at=T0 + 2 * H)  # resolution due T0+29h
        assert sla_state(ticket_with(c, status, resolved_at=T0 + 29 * H), T0 + 500 * H) == "met"  # exactly on time
        assert sla_state(ticket_with(c, status, resolved_at=T0 + 10 * H), T0 + 500 * H) == "met"
        assert sla_state(ticket_with(c, status, resolved_at=T0 + 29 * H + US), T0) == "missed"

    def test_after_first_response_state_follows_resolution_deadline(self):
        # Five hours in, the response deadline (4 h) has passed, but a response was given in time.
        answered = ticket_with(clock(status=S.IN_PROGRESS, changes=OPENED, first_response_at=T0 + 2 * H),
                               status=S.IN_PROGRESS)
        assert sla_state(answered, T0 + 5 * H) == "ok"
        unanswered = ticket_with(clock(status=S.IN_PROGRESS, changes=OPENED), status=S.IN_PROGRESS)
        assert sla_state(unanswered, T0 + 5 * H) == "breached"
