"""Run JupyterHub's idle culler (jupyterhub_idle_culler) as a managed service that SIGINT ends at once.

JupyterHub stops a managed service with SIGINT and waits `interrupt_timeout`
(30 s by default) before SIGTERM. In Python, SIGINT is a KeyboardInterrupt
raised wherever the culler happens to be; raised inside a tornado callback
(a cull request closing its socket) it is logged and swallowed, the culler
runs on, and the hub's stop waits the whole 30 s (seen in the hub suite: a
hub stop of 30 s with the culler's KeyboardInterrupt traceback in its log).
Under the leader supervisor a hub stop is cut at its 10 s grace instead, so
a switch or a restart could wait 10 s on it. The culler keeps no state of
its own (the hub holds users' activity), so here SIGINT gets the kernel's
default action: the process ends at once, whatever it is doing.

    python -m hubconfig.culler [jupyterhub_idle_culler's options]
"""

from __future__ import annotations

import signal


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from jupyterhub_idle_culler import main as culler_main

    culler_main()


if __name__ == "__main__":
    main()
