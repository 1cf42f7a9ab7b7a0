"""The API personas of tests/api (a token client each) serve the dashboard's API tests too."""

from tests.api.conftest import member_api, outsider_api, viewer_api  # noqa: F401
