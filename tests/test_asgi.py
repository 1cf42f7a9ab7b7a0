"""The ASGI entry point uvicorn imports in each web process."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parent.parent


def test_the_web_process_freezes_what_it_loaded_at_start_up():
    """Django and the apps' objects are moved out of the collector's reach (gc.freeze)."""
    script = (
        "import gc, config.asgi\n"
        "assert callable(config.asgi.application)\n"
        "print(gc.get_freeze_count())\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert int(result.stdout.strip()) > 10_000
