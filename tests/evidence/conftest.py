"""The API personas of tests/api (a token client each) serve the upload API's tests too."""

from tests.api.conftest import member_api, outsider_api, viewer_api  # noqa: F401
