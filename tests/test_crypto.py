"""Tracker credentials at rest: encrypted, readable with any configured key, rotatable."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command
from django.db import connection as db_connection

from config.crypto import CredentialError
from integrations.models import TrackerConnection, TrackerKind

TOKEN = "clear-api-token-Zq81"
HOOK_SECRET = "clear-hook-secret-Lp55"


def _key() -> str:
    return Fernet.generate_key().decode()


def _connect(team, *, token: str = TOKEN, hook_secret: str = HOOK_SECRET) -> TrackerConnection:
    connection = TrackerConnection(
        team=team,
        kind=TrackerKind.JIRA_DC,
        base_url="https://jira.acme.test",
        project="SHOP",
    )
    connection.token = token
    connection.webhook_secret = hook_secret
    connection.save()
    return connection


def _columns(connection: TrackerConnection) -> tuple[str, str]:
    """The stored ciphertexts, read straight from the table."""
    table = TrackerConnection._meta.db_table
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"SELECT token_encrypted, webhook_secret_encrypted FROM {table} WHERE id = %s",  # noqa: S608
            [connection.pk],
        )
        token, secret = cursor.fetchone()
    return token, secret


def test_a_secret_reads_back_as_it_was_set(team, settings):
    settings.CREDENTIAL_KEYS = [_key()]
    saved = _connect(team)

    fresh = TrackerConnection.objects.get(pk=saved.pk)

    assert fresh.token == TOKEN
    assert fresh.webhook_secret == HOOK_SECRET


def test_the_database_holds_ciphertext_not_the_secret(team, settings):
    settings.CREDENTIAL_KEYS = [_key()]
    saved = _connect(team)

    token_column, secret_column = _columns(saved)

    assert token_column and TOKEN not in token_column
    assert secret_column and HOOK_SECRET not in secret_column
    assert Fernet(settings.CREDENTIAL_KEYS[0]).decrypt(token_column.encode()).decode() == TOKEN


def test_an_empty_secret_is_stored_empty(team, settings):
    settings.CREDENTIAL_KEYS = [_key()]
    saved = _connect(team, hook_secret="")

    assert _columns(saved)[1] == ""
    assert TrackerConnection.objects.get(pk=saved.pk).webhook_secret == ""


def test_rotation_re_encrypts_every_secret_with_the_newest_key(team, settings):
    old, new = _key(), _key()
    settings.CREDENTIAL_KEYS = [old]
    saved = _connect(team)
    updated_at = saved.updated_at
    settings.CREDENTIAL_KEYS = [new, old]

    call_command("rotate_credentials", stdout=StringIO())

    for column in _columns(saved):
        with pytest.raises(InvalidToken):
            Fernet(old).decrypt(column.encode())
        assert Fernet(new).decrypt(column.encode()).decode() in (TOKEN, HOOK_SECRET)
    settings.CREDENTIAL_KEYS = [new]  # the old key can go now
    fresh = TrackerConnection.objects.get(pk=saved.pk)
    assert (fresh.token, fresh.webhook_secret) == (TOKEN, HOOK_SECRET)
    assert fresh.updated_at == updated_at, "a new ciphertext is not a change of the settings"


def test_a_secret_whose_key_was_removed_fails_with_a_clear_message(team, settings):
    removed = _key()
    settings.CREDENTIAL_KEYS = [removed]
    saved = _connect(team)
    settings.CREDENTIAL_KEYS = [_key()]

    with pytest.raises(CredentialError) as caught:
        _ = TrackerConnection.objects.get(pk=saved.pk).token

    message = str(caught.value)
    assert "cannot be decrypted" in message
    assert "rotate_credentials" in message
    assert TOKEN not in message


def test_rotation_prints_counts_and_never_a_secret(team, other_team, settings, capsys):
    old, new = _key(), _key()
    settings.CREDENTIAL_KEYS = [old]
    first = _connect(team)
    _connect(other_team, hook_secret="")
    before = _columns(first)
    settings.CREDENTIAL_KEYS = [new, old]
    out, err = StringIO(), StringIO()

    call_command("rotate_credentials", stdout=out, stderr=err)

    printed = out.getvalue() + err.getvalue() + "".join(capsys.readouterr())
    assert "Re-encrypted 3 secret(s) of 2 connection(s)" in printed
    for secret in (TOKEN, HOOK_SECRET, *before, *_columns(first)):
        assert secret not in printed


def test_rotation_stops_naming_the_team_and_changes_nothing_when_a_key_is_missing(
    team, other_team, settings
):
    old, lost, new = _key(), _key(), _key()
    settings.CREDENTIAL_KEYS = [old]
    good = _connect(team)
    settings.CREDENTIAL_KEYS = [lost]
    bad = _connect(other_team, token="token-under-a-lost-key-Wd3")
    before = {good.pk: _columns(good), bad.pk: _columns(bad)}
    settings.CREDENTIAL_KEYS = [new, old]

    with pytest.raises(CommandError) as caught:
        call_command("rotate_credentials", stdout=StringIO())

    message = str(caught.value)
    assert "Nothing was changed" in message
    assert repr(other_team.slug) in message
    assert repr(team.slug) not in message
    assert "token-under-a-lost-key-Wd3" not in message
    assert {good.pk: _columns(good), bad.pk: _columns(bad)} == before


def test_rotation_with_no_connections_reports_zero(db, settings):
    settings.CREDENTIAL_KEYS = [_key()]
    out = StringIO()

    call_command("rotate_credentials", stdout=out)

    assert "Re-encrypted 0 secret(s) of 0 connection(s)" in out.getvalue()


def test_rotation_re_encrypts_the_confluence_token_too(team, settings):
    from integrations.models import ConfluenceConnection, ConfluenceDeployment

    old, new = _key(), _key()
    settings.CREDENTIAL_KEYS = [old]
    confluence = ConfluenceConnection(
        team=team,
        deployment=ConfluenceDeployment.DATA_CENTER,
        base_url="https://wiki.acme.test",
        space_key="ENG",
        parent_id="1",
        parent_title="Retrospectives",
    )
    confluence.token = TOKEN
    confluence.save()
    settings.CREDENTIAL_KEYS = [new, old]
    out = StringIO()

    call_command("rotate_credentials", stdout=out)

    assert "Re-encrypted 1 secret(s) of 1 connection(s)" in out.getvalue()
    settings.CREDENTIAL_KEYS = [new]
    assert ConfluenceConnection.objects.get(pk=confluence.pk).token == TOKEN


def test_rotation_re_encrypts_the_chat_channels_webhook_urls_and_bot_tokens(team, settings):
    from notices.models_chat import ChatConnection, ChatKind

    old, new = _key(), _key()
    settings.CREDENTIAL_KEYS = [old]
    hook = "https://hooks.slack.test/services/T000/B000/chat-secret-Zq8"
    slack = ChatConnection(team=team, kind=ChatKind.SLACK_WEBHOOK, name="#retros", events=[])
    slack.secret = hook
    slack.save()
    settings.CREDENTIAL_KEYS = [new, old]
    out = StringIO()

    call_command("rotate_credentials", stdout=out)

    assert "Re-encrypted 1 secret(s) of 1 connection(s)" in out.getvalue()
    assert hook not in out.getvalue()
    settings.CREDENTIAL_KEYS = [new]  # the old key dropped: the channel still works
    assert ChatConnection.objects.get(pk=slack.pk).secret == hook
