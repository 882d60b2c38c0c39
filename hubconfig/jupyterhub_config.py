"""The hub image's jupyterhub_config.py: everything comes from the platform config."""

from hubconfig import configure

configure(get_config())  # noqa: F821 - provided by JupyterHub when it loads this file
