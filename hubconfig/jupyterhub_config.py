"""The hub image's jupyterhub_config.py: everything comes from the platform config."""

from hubconfig import configure
from hubconfig.leader import assert_leader

# In a hub pair, only the child of the supervisor holding the lock may run.
assert_leader()
configure(get_config())  # noqa: F821 - provided by JupyterHub when it loads this file
