from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from teams.models import ApiToken
from tests.api.conftest import ApiClient


def test_issue_token_prints_only_the_token(member, team):
    out, err = StringIO(), StringIO()
    call_command("issue_token", "mia", "--name", "CI pipeline", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert raw.startswith("lks_")
    assert "\n" not in raw
    token = ApiToken.objects.get(user=member)
    assert token.name == "CI pipeline"
    assert token.digest == ApiToken.digest_of(raw)
    assert raw not in err.getvalue()
    assert ApiClient(raw).get("/teams/checkout").status_code == 200


def test_issue_token_has_a_default_name(member):
    call_command("issue_token", "mia", stdout=StringIO(), stderr=StringIO())
    assert ApiToken.objects.get(user=member).name == "issued by CLI"


def test_issue_token_for_an_unknown_user_fails(db):
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("issue_token", "ghost", stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()


def test_issue_token_refuses_an_overlong_name(member):
    with pytest.raises(CommandError, match="100"):
        call_command("issue_token", "mia", "--name", "n" * 101, stdout=StringIO())
    assert not ApiToken.objects.exists()
