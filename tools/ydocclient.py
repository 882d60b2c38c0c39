"""A real-time collaboration client (jupyter-collaboration's Y protocol) for tests.

What JupyterLab does to edit a notebook together with others: ask the
server for a session on the file (PUT /api/collaboration/session/<path>),
open the document's room over a websocket, and keep a local Y document in
sync with it (pycrdt's Provider speaks the Y sync protocol; jupyter_ydoc's
YNotebook reads and edits it as a notebook). Part of the lab toolkit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import requests
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Provider
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClosedError, websocket_connect


class WebsocketChannel:
    """pycrdt's Channel over a tornado websocket client connection."""

    def __init__(self, conn, path: str) -> None:
        self._conn, self._path = conn, path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> WebsocketChannel:
        return self

    async def __anext__(self) -> bytes:
        message = await self._conn.read_message()
        if message is None:
            raise StopAsyncIteration
        return message

    async def send(self, message: bytes) -> None:
        with contextlib.suppress(WebSocketClosedError):
            await self._conn.write_message(message, binary=True)

    async def recv(self) -> bytes:
        return await self.__anext__()


@contextlib.asynccontextmanager
async def shared_notebook(
    api: requests.Session, server: str, path: str, token: str, ca: str | None = None
) -> AsyncIterator[YNotebook]:
    """The notebook at path on the server (its base URL), as a live Y document edited by token's owner."""
    r = api.put(f"{server}/api/collaboration/session/{path}", json={"format": "json", "type": "notebook"}, timeout=30)
    assert r.status_code in (200, 201), (r.status_code, r.text[:300])
    session = r.json()
    room = f"json:notebook:{session['fileId']}"
    url = (
        server.replace("https://", "wss://").replace("http://", "ws://")
        + f"/api/collaboration/room/{room}?sessionId={session['sessionId']}"
    )
    conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}, ca_certs=ca))
    doc = Doc()
    try:
        async with Provider(doc, WebsocketChannel(conn, room)) as provider:
            await provider.synced.wait()
            yield YNotebook(doc)
    finally:
        conn.close()


def notebook(source: str = "x = 1") -> dict:
    """A one-cell notebook (nbformat 4.5) as the contents API takes it."""
    cell = {"cell_type": "code", "id": "c1", "source": source, "metadata": {}, "outputs": [], "execution_count": None}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}


def source(nb: YNotebook) -> str:
    """The first cell's text of a live notebook."""
    return str(nb.ycells[0]["source"])


def type_into(nb: YNotebook, text: str) -> None:
    """Type at the end of the first cell, as an editor does (one Y transaction)."""
    with nb.ydoc.transaction():
        cell = nb.ycells[0]["source"]
        cell.insert(len(cell), text)
