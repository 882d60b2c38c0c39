#!/usr/bin/python3
"""twinhub home directory service, on the storage host.

The hub asks for a user's home before the first spawn:
    PUT /homes/<escaped name>      Authorization: Bearer <token>
creates ROOT/<escaped name> owned by the notebook uid:gid, mode 0700 (201), or
leaves an existing one untouched (200). GET /healthz answers 200.

Why a service: the hub mounts the storage with root_squash, so root there
cannot create a directory owned by the notebook uid. Standard library only.
"""

import argparse
import hmac
import json
import os
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The hub sends the user's name as hubconfig.names spells it (DockerSpawner's
# escaping: a-z, 0-9 and "-"); anything else (a raw name with a dot, an
# @, a slash, a traversal) is refused rather than escaped a second way here.
USERNAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


def make_handler(root: Path, uid: int, gid: int, token: str):
    class Handler(BaseHTTPRequestHandler):
        server_version = "twinhub-homedird"

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/healthz":
                self._reply(200, {"ok": True})
            else:
                self._reply(404, {"error": "not found"})

        def do_PUT(self):
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                self._reply(403, {"error": "bad or missing token"})
                return
            parts = self.path.strip("/").split("/")
            if len(parts) != 2 or parts[0] != "homes" or not USERNAME.match(parts[1]):
                self._reply(400, {"error": "expected PUT /homes/<name escaped as a-z 0-9 and ->"})
                return
            home = root / parts[1]
            try:
                home.mkdir(mode=0o700)
            except FileExistsError:
                self._reply(200, {"home": str(home), "created": False})
                return
            os.chown(home, uid, gid)
            home.chmod(0o700)
            self._reply(201, {"home": str(home), "created": True})

        def log_message(self, fmt, *args):
            print(f"{self.address_string()} {fmt % args}", flush=True)

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("--uid", required=True, type=int)
    ap.add_argument("--gid", required=True, type=int)
    ap.add_argument("--listen", default="0.0.0.0:9780")
    ap.add_argument("--token-file", required=True)
    args = ap.parse_args()
    token = Path(args.token_file).read_text().strip()
    if len(token) < 32:
        raise SystemExit(f"{args.token_file}: token shorter than 32 characters")
    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), make_handler(args.root, args.uid, args.gid, token))
    server.serve_forever()


if __name__ == "__main__":
    main()
