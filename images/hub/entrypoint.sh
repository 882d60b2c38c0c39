#!/bin/sh
# Start JupyterHub from the platform config. With TWINHUB_LEADER_DB_URL set
# (a hub pair sharing one database), only the holder of the leader lock runs
# it; the other waits (hubconfig.leader).
set -eu
config=/opt/hub/lib/python3.11/site-packages/hubconfig/jupyterhub_config.py
if [ -n "${TWINHUB_LEADER_DB_URL:-}" ]; then
  # Warm standby: JupyterHub is imported while waiting (hubconfig.warmstart).
  exec python -m hubconfig.leader --warm -- python -m hubconfig.warmstart -f "$config" "$@"
fi
exec jupyterhub -f "$config" "$@"
