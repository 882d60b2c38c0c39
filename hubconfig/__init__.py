"""twinhub's hub configuration: one platform config file -> JupyterHub traits."""
