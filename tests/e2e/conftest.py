"""The end-to-end suites run against the lab brought up by `./twinhub up`."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture(scope="session", autouse=True)
def lab_is_up():
    p = subprocess.run(
        ["docker", "ps", "--filter", "label=io.twinhub.lab=1", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
    )
    if "twinhub-lab-hub-a" not in p.stdout.split():
        pytest.fail("the lab is not running: bring it up with `./twinhub up` (or run `./twinhub lab-e2e`)")
