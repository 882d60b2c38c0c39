"""A hub that drains on a planned stop instead of dropping what it was doing.

Upstream JupyterHub, on SIGTERM, cleans up and cancels every task while its
port still accepts connections: requests in flight are cut, and new ones
reach a hub that is going away. Run by hubconfig.warmstart, this hub on
SIGTERM (or SIGINT):

1. stops listening, so a new connection is refused and NGINX holds the
   request (even a POST: nothing was sent) until the next hub serves;
2. answers every request still arriving on an open keep-alive connection
   with `Connection: close`, so NGINX opens no more requests on it;
3. waits until no request is in flight (at most drain_timeout seconds:
   the progress event streams of spawn pages never finish on their own),
4. then shuts down as upstream does.

The in-flight count is kept by a tornado output transform (one per
request, told when the response's last chunk goes out): tornado's HTTP
server has no count of its own.
"""

from __future__ import annotations

import asyncio
import signal
import time

from jupyterhub.app import JupyterHub
from tornado.web import OutputTransform
from traitlets import Float


class _Requests:
    in_flight = 0
    draining = False


class _TrackRequests(OutputTransform):
    def __init__(self, request) -> None:
        _Requests.in_flight += 1
        self._open = True

    def _done(self, finishing: bool) -> None:
        if finishing and self._open:
            self._open = False
            _Requests.in_flight -= 1

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        if _Requests.draining:
            headers["Connection"] = "close"
        self._done(finishing)
        return status_code, headers, chunk

    def transform_chunk(self, chunk, finishing):
        self._done(finishing)
        return chunk


class DrainingJupyterHub(JupyterHub):
    drain_timeout = Float(5.0, config=True, help="Longest wait (s) for requests in flight on a planned stop.")

    def init_tornado_application(self):
        super().init_tornado_application()
        self.tornado_application.add_transform(_TrackRequests)

    def init_signal(self):
        loop = asyncio.get_event_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda sig=sig: asyncio.ensure_future(self.drain_and_stop(sig)))

    async def drain_and_stop(self, sig: signal.Signals) -> None:
        if _Requests.draining:
            return
        _Requests.draining = True
        t0 = time.monotonic()
        if self.http_server:
            self.http_server.stop()
        while _Requests.in_flight > 0 and time.monotonic() - t0 < self.drain_timeout:
            await asyncio.sleep(0.02)
        self.log.info(
            "Drained in %.2f s (%d request(s) still in flight), shutting down",
            time.monotonic() - t0,
            _Requests.in_flight,
        )
        await self.shutdown_cancel_tasks(sig)


main = DrainingJupyterHub.launch_instance
