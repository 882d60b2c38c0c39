"""Warm standby: import JupyterHub now, start it when the leader lock is ours.

Run by the leader supervisor with --warm (the hub image's entrypoint). A
standby hub spends ~2 s of a takeover importing JupyterHub, the spawners and
hubconfig and reading its config; this does that while standing by, then
blocks on the supervisor's pipe. When the supervisor holds the lock it writes
the holder string (checked again by the config's assert_leader) and this
runs the hub (hubconfig.drain's, which drains on a planned stop); if the
supervisor exits first, the pipe closes and this exits without starting.

Usage (from hubconfig.leader --warm):  python -m hubconfig.warmstart [jupyterhub args]
"""

from __future__ import annotations

import os
import sys

from hubconfig.leader import GO_FD_ENV, HOLDER_ENV


def main() -> int:
    fd = int(os.environ.pop(GO_FD_ENV))
    # The imports a hub start pays for, done before it is needed.
    import jupyterhub.apihandlers
    import jupyterhub.app
    import jupyterhub.handlers  # noqa: F401 - imported ahead for the start

    import hubconfig.swarmspawner

    # The platform config read and checked once (schema, authenticator and
    # spawner classes imported, caches filled) into a config thrown away:
    # the real start reads it again in a fraction of the time. A config
    # that is wrong is reported by that real start, not here.
    try:
        from traitlets.config import Config

        import hubconfig

        hubconfig.configure(Config())
    except (Exception, SystemExit):
        pass

    with os.fdopen(fd, "rb") as go:
        holder = go.readline().decode().strip()
    if not holder:
        return 0  # the supervisor went away before it got the lock
    os.environ[HOLDER_ENV] = holder
    sys.argv = ["jupyterhub", *sys.argv[1:]]
    # JupyterHub that drains on a planned stop (hubconfig.drain).
    from hubconfig.drain import main as run_hub

    return run_hub() or 0


if __name__ == "__main__":
    sys.exit(main())
