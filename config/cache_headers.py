"""What browsers and proxies may keep of an answer: `Vary` for htmx, `Cache-Control` for people.

Pages answer an htmx swap with a fragment and a plain request with the whole page, under the
same URL (htmx pushes it). Unless the answer says it varies on `HX-Request`, a browser may
serve the fragment it fetched for the swap when Back (or a reload) asks for the page, and shows
it bare, unstyled. So every HTML answer varies on `HX-Request`, and on
`HX-History-Restore-Request`, which some views read to send the whole page to htmx's history
restore. Varying answers that do not differ costs nothing: signed-in pages are not cached.

A signed-in person's answers (a session, or an API token in `Authorization`) are theirs only:
`Cache-Control: private, no-store`, unless the view chose its own `Cache-Control` (the live
board's stream says `no-cache`). Static files are served by WhiteNoise before this runs.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control, patch_vary_headers

HTMX_HEADERS = ("HX-Request", "HX-History-Restore-Request")


class CacheHeadersMiddleware:
    """After AuthenticationMiddleware: it reads `request.user`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            patch_vary_headers(response, HTMX_HEADERS)
        if "Cache-Control" not in response and _signed_in(request):
            patch_cache_control(response, private=True, no_store=True)
        return response


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated) or "Authorization" in request.headers
