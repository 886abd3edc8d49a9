"""A property-based run of the whole API from its own OpenAPI document (schemathesis, in-process
against the WSGI app, on the test's rolled-back database): no input gets a 500, and no answer
contradicts the document (status codes, content types, bodies, headers).

Bounded and repeatable for CI: a fixed number of examples per operation, derandomized, positive
and negative (schema-breaking) inputs both."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories as f
from tests.api.conftest import make_client

EXAMPLES_PER_OPERATION = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def test_no_input_gets_a_500_or_an_answer_the_document_does_not_describe(app, session, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_PER_MINUTE", 1_000_000)
    _, _, token = make_client(session)
    auth = {"Authorization": f"Bearer {token}"}
    customer = f.make_customer(session)  # some rows, so that reads and changes find something now and then
    f.make_contact(session, customer=customer)
    f.make_contract(session, customer=customer)
    f.make_ticket(session, customer=customer)
    f.make_time_entry(session)
    f.make_project(session, customer=customer)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), print_blob=False)
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                headers = {**(case.headers or {}), **auth}
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS, headers=headers)

            run()
