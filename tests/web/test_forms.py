"""The forms parse a page's input into the typed values services take; a wrong shape is a message
beside its field (the rules themselves are the services' and are tested there)."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import pytest
from werkzeug.datastructures import MultiDict

from portal.models import CommunicationPreference, TicketPriority, WorkCategory
from portal.services.errors import Invalid
from portal.web.forms import (
    DetailsForm,
    NewTicketForm,
    ProfileForm,
    ProjectForm,
    RatingForm,
    StatusForm,
    TimeEntryForm,
    parse,
)


@pytest.fixture
def request_context(app):
    with app.test_request_context("/"):
        yield


def _parse(form_class, **values):
    return parse(form_class, MultiDict(values))


@pytest.mark.parametrize("raw, typed", [("1.5", Decimal("1.5")), (" 0.25 ", Decimal("0.25")), ("1,75", Decimal("1.75")),
                                        ("24", Decimal("24")), ("", None), ("   ", None)])
def test_hours_are_numbers_as_people_type_them(request_context, raw, typed):
    assert _parse(TimeEntryForm, hours=raw).hours.data == typed


@pytest.mark.parametrize("raw", ["abc", "1e30", "NaN", "Infinity", "1.2.3", "12345678901234567890123"])
def test_what_is_no_number_is_refused_beside_the_hours(request_context, raw):
    with pytest.raises(Invalid) as refused:
        _parse(TimeEntryForm, hours=raw)
    assert refused.value.field == "hours" and "Enter the hours" in refused.value.message


@pytest.mark.parametrize("field", ["start_time", "end_time"])
def test_an_unreadable_time_names_its_field(request_context, field):
    with pytest.raises(Invalid) as refused:
        _parse(TimeEntryForm, **{field: "half past nine"})
    assert refused.value.errors == {field: "Enter the time as HH:MM."}


def test_times_dates_and_categories_parse(request_context):
    form = _parse(TimeEntryForm, work_date="2026-11-30", start_time="09:00", end_time="10:30",
                  work_category="project", is_billable="1", work="ticket:12")
    assert (form.work_date.data, form.start_time.data, form.end_time.data) == (date(2026, 11, 30), time(9), time(10, 30))
    assert form.work_category.data is WorkCategory.PROJECT and form.is_billable.data is True
    assert form.work_ids() == (12, None)


@pytest.mark.parametrize("raw", ["10/06/2026", "2026-02-30", "tomorrow"])
def test_a_date_that_is_no_date_is_refused(request_context, raw):
    with pytest.raises(Invalid) as refused:
        _parse(TimeEntryForm, work_date=raw)
    assert refused.value.errors == {"work_date": "Enter the date as YYYY-MM-DD."}


@pytest.mark.parametrize("work", ["ticket:²", "project:١٢", "ticket:", "ticket:99999999999", "nonsense"])
def test_a_work_that_is_no_id_is_none(request_context, work):
    assert _parse(TimeEntryForm, work=work).work_ids() == (None, None)


def test_a_choice_off_the_list_is_refused_with_its_message(request_context):
    with pytest.raises(Invalid) as refused:
        _parse(TimeEntryForm, work_category="lunch")
    assert refused.value.errors == {"work_category": "Choose a category from the list."}
    with pytest.raises(Invalid) as refused:
        _parse(ProfileForm, communication_preference="pigeon")
    assert refused.value.errors == {"communication_preference": "Choose how we should contact you."}
    assert _parse(ProfileForm, communication_preference="sms").communication_preference.data \
        is CommunicationPreference.SMS


def test_a_new_ticket_with_a_bad_shape_shows_the_services_words_for_the_other_fields(request_context):
    from portal.services import tickets

    def rules(form):
        return tickets.ticket_field_errors(tickets.NewTicket(title=form.title.data, description=form.description.data,
                                                             category=form.category.data, priority=form.priority.data))

    with pytest.raises(Invalid) as refused:
        parse(NewTicketForm, MultiDict({"title": "", "description": "", "category": "furniture", "priority": "urgent"}),
              rules=rules)
    assert refused.value.errors == {"title": "Enter the title.", "description": "Enter the description.",
                                    "category": "Choose a category from the list.",
                                    "priority": "Choose a priority from the list."}
    assert _parse(NewTicketForm, priority="critical").priority.data is TicketPriority.CRITICAL


@pytest.mark.parametrize("raw", ["5", "1"])
def test_a_rating_is_a_whole_number(request_context, raw):
    assert _parse(RatingForm, customer_satisfaction=raw).customer_satisfaction.data == int(raw)


@pytest.mark.parametrize("raw", ["abc", "4.5", "1e3", "99999999999"])
def test_a_rating_that_is_no_whole_number_is_refused(request_context, raw):
    with pytest.raises(Invalid) as refused:
        _parse(RatingForm, customer_satisfaction=raw)
    assert refused.value.field == "customer_satisfaction"


@pytest.mark.parametrize("raw, typed", [("$12,000.50", Decimal("12000.50")), ("12000", Decimal("12000")),
                                        ("12 000", Decimal("12000"))])
def test_money_as_people_type_it(request_context, raw, typed):
    assert _parse(ProjectForm, budget_amount=raw).budget_amount.data == typed


def test_a_change_to_a_ticket_without_its_version_is_out_of_date(request_context):
    for form_class in (StatusForm, DetailsForm):
        with pytest.raises(Invalid) as refused:
            _parse(form_class, priority="high", status="resolved")
        assert refused.value.field == "version" and "out of date" in refused.value.message
    assert _parse(DetailsForm, version="3", estimated_hours="2.5").estimated_hours.data == Decimal("2.5")
