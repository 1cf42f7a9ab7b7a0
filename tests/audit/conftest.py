"""The retro fixtures of tests/retros, for the audit of closing and reopening."""

from tests.retros.conftest import (  # noqa: F401
    closed_retro,
    retro,
    second_escape,
    whys_retro,
)
