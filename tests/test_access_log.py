"""Links that are credentials stay out of the web process's logs (config/log_redaction.py).

A real uvicorn, started as docker-compose.yml starts it (access log on, two worker
processes), on a database of its own; each kind of secret link is requested, as a path and
inside a sign-in's ?next=, with answers that Django logs too (404, 405, a CSRF refusal).
Then everything the server wrote is read: no secret in it, and the ordinary paths and the
redacted lines are there, so the test would notice a log that said nothing at all.
"""

import json
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from config.log_redaction import redact
from tests.browser.stack import Stack

pytestmark = pytest.mark.processes

SETUP = """
import json
import django; django.setup()
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.management import call_command
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from retros.models import Retrospective
from retros.views_join import retro_join_key
from teams.invitations import invitation_create
from teams.services import team_create

call_command("migrate", interactive=False, verbosity=0)
admin = User.objects.create_user("ada", email="ada@example.com", password="x-Harbour-42")
team = team_create(name="Logs", slug="logs", admin=admin)
_, token = invitation_create(team=team, email="new@example.com", role="member", by=admin)
print(json.dumps({
    "invitation": token,
    "uid": urlsafe_base64_encode(force_bytes(admin.pk)),
    "reset": default_token_generator.make_token(admin),
    # A retro that does not exist: the key is as secret, and Django logs its 404.
    "join": retro_join_key(Retrospective(pk=4242, team_id=team.pk)),
}))
"""

WEBHOOK_TOKEN = "whtok-4f9c2e7a1b"  # made up: no connection has it
SSO_CODE = "sso-authorization-code-4711"


@pytest.fixture
def server(tmp_path: Path):
    # The embedded default whatever the environment: only the logging is under test here.
    web = Stack(var_dir=tmp_path, web_workers=2, access_log=True)
    secrets = json.loads(web.python(SETUP))
    web.start_web()
    try:
        yield web, secrets
    finally:
        web.stop()


def test_secret_links_are_redacted_in_the_access_log_and_djangos_request_log(server):
    web, secrets = server
    invitation = f"/invitations/{secrets['invitation']}/"
    join = f"/join/{secrets['join']}/"
    reset = f"/accounts/reset/{secrets['uid']}/{secrets['reset']}/"
    hook = f"/hooks/jira/{WEBHOOK_TOKEN}/"
    with httpx.Client(base_url=web.url) as client:
        assert client.get(invitation).status_code == 200
        # The page set the CSRF cookie; a post without the token is refused and logged.
        assert client.post(invitation).status_code == 403
        assert client.get(join).status_code == 404  # django.request "Not Found"
        assert client.get(reset).status_code == 302  # to .../set-password/
        assert client.get("/accounts/reset/done/").status_code == 200
        assert client.get(hook).status_code == 405  # django.request "Method Not Allowed"
        # A provider's answer to single sign-on (off here: 404, but logged all the same).
        assert client.get(f"/accounts/sso/callback/?code={SSO_CODE}&state=st8").status_code == 404
        for path in (invitation, join, reset):
            assert client.get(f"/accounts/login/?next={quote(path, safe='')}").status_code == 200
        assert client.get("/accounts/login/?next=/t/logs/").status_code == 200
    web.stop()  # the workers flush and exit: the log is complete
    log = (web.var_dir / "web.log").read_text()

    for secret in (
        secrets["invitation"],
        secrets["join"],
        secrets["reset"],
        WEBHOOK_TOKEN,
        SSO_CODE,
    ):
        assert secret not in log, f"{secret} is in the log:\n{log}"
    assert secrets["join"].split(":")[0] not in log  # nor the readable half of the join key
    # The ordinary requests are logged as they were; the secret ones with [redacted].
    for line in (
        '"GET /accounts/reset/done/ HTTP/1.1" 200',
        '"GET /accounts/login/?next=/t/logs/ HTTP/1.1" 200',
        '"GET /invitations/[redacted]/ HTTP/1.1" 200',
        '"POST /invitations/[redacted]/ HTTP/1.1" 403',
        '"GET /join/[redacted]/ HTTP/1.1" 404',
        '"GET /accounts/reset/[redacted]/ HTTP/1.1" 302',
        '"GET /accounts/login/?next=%2Finvitations%2F[redacted]%2F HTTP/1.1" 200',
        "django.request Not Found: /join/[redacted]/",
        '"GET /accounts/sso/callback/?code=[redacted]&state=[redacted] HTTP/1.1" 404',
        "django.request Method Not Allowed (GET): /hooks/jira/[redacted]/",
        "django.security.csrf Forbidden (CSRF token missing.): /invitations/[redacted]/",
    ):
        assert line in log, f"{line} is not in the log:\n{log}"


@pytest.mark.parametrize(
    "path",
    [
        "/t/demo/members/invitations/12/resend/",  # an invitation's id on the members page
        "/t/demo/members/join-link/",
        "/t/demo/retros/guide/coverage_gap/reset/",
        "/accounts/reset/done/",
        "/accounts/login/?next=/t/demo/retros/3/",
        "/t/demo/escapes/?barcode=7&restate=1",  # only a query's own code= and state= go
    ],
)
def test_ordinary_paths_are_logged_as_they_are(path):
    assert redact(path) == path
