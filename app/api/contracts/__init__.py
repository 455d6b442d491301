"""Typed contracts of the HTTP API: a pydantic model for every request and response body.

Request models validate the envelopes (``errors.py`` turns their errors into the API's 4xx bodies); response
models document what the routes build (the routes keep building plain dicts on the hot path, and
``tests/unit/test_contracts.py`` checks live answers against these models). ``app/api/openapi.py`` generates
the OpenAPI document from them. Models that embed an applicant are built per dataset schema
(``requests.RequestContracts``), because the applicant model itself is (``app.serving.validation``).
"""
