"""hubconfig.slurm: the tokens the hub signs and how a silent cluster is reported (the lab runs it for real)."""

from __future__ import annotations

import time

import jwt
import pytest
from support import free_port

from hubconfig.slurm import TOKEN_LIFETIME, ClusterUnavailable, SlurmCluster

KEY = b"k" * 40


def test_a_token_names_the_user_and_lives_a_minute():
    claims = jwt.decode(SlurmCluster("alpha", "http://x", KEY).token("john.doe"), KEY, algorithms=["HS256"])
    assert claims["sun"] == "john.doe"
    assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME == 60
    assert abs(claims["iat"] - time.time()) < 5


@pytest.mark.parametrize("user", ["root", "slurm", "munge"])
def test_no_token_for_the_clusters_own_accounts(user):
    with pytest.raises(ValueError, match="system account"):
        SlurmCluster("alpha", "http://x", KEY).token(user)


def test_no_token_for_a_name_the_platform_refuses():
    with pytest.raises(ValueError, match="no Slurm token for 'John Doe'"):
        SlurmCluster("alpha", "http://x", KEY).token("John Doe")


def test_a_cluster_that_does_not_answer_is_named_at_once():
    c = SlurmCluster("beta", f"http://127.0.0.1:{free_port()}", KEY, timeout=2)
    t0 = time.monotonic()
    with pytest.raises(ClusterUnavailable, match=r"Slurm cluster beta does not answer at http://127\.0\.0\.1:"):
        c.submit("john.doe", "#!/bin/sh\n", partition="batch", cpus=1, memory_mb=64, minutes=1, cwd="/tmp", environment={})
    assert time.monotonic() - t0 < 2
