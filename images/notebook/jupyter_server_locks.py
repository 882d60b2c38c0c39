# The notebook server's contents manager: Jupyter's own with locks on the
# shared area (twinhub_locks; the hub says which directory and how long, or
# turns them off with --ServerApp.contents_manager_class). Installed as
# <prefix>/etc/jupyter/jupyter_server_config.py: server settings other than
# which extensions are on are not read from jupyter_server_config.d.
c = get_config()  # noqa: F821 (traitlets config file)
c.ServerApp.contents_manager_class = "twinhub_locks.LockingContentsManager"
