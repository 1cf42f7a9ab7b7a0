"""The API personas of tests/api (a token client each) serve the dashboard's API tests too, and
every API answer they get is checked against the OpenAPI document, as in tests/api."""

from tests.api.conftest import (  # noqa: F401
    answers_match_the_openapi_document,
    member_api,
    outsider_api,
    viewer_api,
)
