#!/bin/sh
# Standalone local notebook server (no hub): token login, prints its URL.
# Under a hub, the spawner runs jupyterhub-singleuser instead.
exec jupyter lab --ServerApp.ip=0.0.0.0 --ServerApp.port=8888 --ServerApp.open_browser=False "$@"
