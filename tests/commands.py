"""Typed commands for service tests, from the strings a test finds readable ("2026-12-01", "4000").

Services take typed values (pages parse with WTForms, the API with its schemas); these build them
the way a test reads best. A string that is not a valid value raises here: bad shapes are the
forms' business (tests/web/test_forms.py).
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from datetime import date, time
from decimal import Decimal

from portal.services.people import ProfileChange
from portal.services.projects import PhasePlan, ProjectPlan
from portal.services.tickets import NewTicket
from portal.services.timesheets import NewTimeEntry


def _convert(kind, value):
    if value is None or not isinstance(value, str):
        return value
    for option in typing.get_args(kind) or (kind,):
        if option is type(None) or option is str:
            continue
        if value == "" and option is not str:
            return None
        if isinstance(option, type) and issubclass(option, enum.Enum):
            return option(value)
        if option is Decimal:
            return Decimal(value)
        if option is date:
            return date.fromisoformat(value)
        if option is time:
            return time.fromisoformat(value)
        if option is int:
            return int(value)
    return value


def _typed(cls, **values):
    hints = typing.get_type_hints(cls)
    fields = {field.name for field in dataclasses.fields(cls)}
    return cls(**{name: _convert(hints[name], value) for name, value in values.items() if name in fields})


def project_plan(**values) -> ProjectPlan:
    return _typed(ProjectPlan, **values)


def phase_plan(**values) -> PhasePlan:
    return _typed(PhasePlan, **values)


def time_entry(**values) -> NewTimeEntry:
    return _typed(NewTimeEntry, **values)


def new_ticket(**values) -> NewTicket:
    return _typed(NewTicket, **values)


def profile(**values) -> ProfileChange:
    return _typed(ProfileChange, **values)
