"""`seed_demo` on a database that already has a user of a demo name: on a fresh database of
its own, unlike tests/commands/test_seed_demo.py, which seeds once for all its tests."""

import pytest
from django.contrib.auth.models import User

from tests.commands.test_seed_demo import seed

pytestmark = pytest.mark.django_db


def test_seed_demo_reuses_an_existing_user_of_the_same_name():
    User.objects.create_user("engineer", password="my-own-password")
    seed()
    assert User.objects.filter(username="engineer").count() == 1
    assert User.objects.get(username="engineer").check_password("my-own-password")
