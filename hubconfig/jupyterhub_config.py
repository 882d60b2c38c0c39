"""The hub image's jupyterhub_config.py: everything comes from the platform config."""

from hubconfig import configure
from hubconfig.leader import assert_leader, fence_database_connections

# In a hub pair, only the child of the supervisor holding the lock may run,
# and each database connection it opens checks the lock is still held.
assert_leader()
fence_database_connections()
configure(get_config())  # noqa: F821 - provided by JupyterHub when it loads this file
