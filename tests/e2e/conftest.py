"""The end-to-end suites run against the lab brought up by `./twinhub up`."""

from __future__ import annotations

import pytest
from support import lab


@pytest.fixture(scope="session", autouse=True)
def lab_is_up():
    if not all(lab().running(host) for host in lab().hosts):
        pytest.fail("the lab is not running: bring it up with `./twinhub up` (or run `./twinhub lab-e2e`)")
