"""Issue 11, point 6: email goes through Django's mailers, configured from the environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
EMAIL_VARIABLES = (
    "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS", "EMAIL_TIMEOUT", "EMAIL_FILE_PATH", "DEFAULT_FROM_EMAIL", "DEBUG",
)  # fmt: skip
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-enough-3f9c1e7b2d",
    "LEAKSEAL_CREDENTIAL_KEYS": "Wnn2o4d1Bq5DZp6jvJ0o3QdVb7n1nH7l1p9bS8Qe0vA=",
}


def _mail_settings(tmp_path: Path, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in EMAIL_VARIABLES}
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps({'mailer': settings.MAILERS['default'], "
        "'from': settings.DEFAULT_FROM_EMAIL}))"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and settings
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LEAKSEAL_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_embedded_default_prints_email_to_the_console(tmp_path):
    found = _mail_settings(tmp_path)
    assert found["mailer"]["BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_production_sends_by_smtp_with_the_settings_from_the_environment(tmp_path):
    found = _mail_settings(
        tmp_path,
        **PRODUCTION,
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="2525",
        EMAIL_HOST_USER="leakseal",
        EMAIL_HOST_PASSWORD="s3cret",
        EMAIL_USE_TLS="0",
        DEFAULT_FROM_EMAIL="Leakseal <noreply@example.com>",
    )
    assert found["mailer"] == {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": "smtp.example.com",
            "port": 2525,
            "username": "leakseal",
            "password": "s3cret",
            "use_tls": False,
            "timeout": 10,
        },
    }
    assert found["from"] == "Leakseal <noreply@example.com>"


def test_production_without_a_host_still_uses_smtp_never_the_console(tmp_path):
    found = _mail_settings(tmp_path, **PRODUCTION)
    assert found["mailer"]["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert found["mailer"]["OPTIONS"]["host"] == "localhost"


def test_the_file_backend_can_be_chosen_for_tests(tmp_path):
    found = _mail_settings(
        tmp_path,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(tmp_path / "mail"),
    )
    assert found["mailer"]["OPTIONS"] == {"file_path": str(tmp_path / "mail")}
