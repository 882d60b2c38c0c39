"""NFS-Ganesha exports, checked over the wire from a client with libnfs."""

import json
import os
import uuid

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
TOKEN = "molecule-token-0123456789abcdef0123456789abcdef"
testinfra_hosts = [f"ansible://nfs-hub?ansible_inventory={INVENTORY}"]


@pytest.fixture(scope="module")
def storage():
    return testinfra.get_host(f"ansible://storage?ansible_inventory={INVENTORY}")


def nfs(path: str, uid: int | None = None, gid: int = 100) -> str:
    query = "version=4" + (f"&uid={uid}&gid={gid}" if uid is not None else "")
    return f"'nfs://storage/{path}?{query}'"


def put_home(host, user: str, token: str = TOKEN):
    out = host.run(
        f"curl -s -o /dev/stdout -w ' %{{http_code}}' -X PUT -H 'Authorization: Bearer {token}' http://storage:9780/homes/{user}"
    )
    body, _, code = out.stdout.rpartition(" ")
    return int(code), (json.loads(body) if body.strip().startswith("{") else body)


def test_services_running(storage):
    assert storage.service("nfs-ganesha").is_running
    assert storage.service("nfs-ganesha").is_enabled
    assert storage.service("twinhub-homedird").is_running
    assert storage.file("/etc/twinhub/homedird.token").mode == 0o600


def test_layout_on_the_server(storage):
    assert storage.file("/srv/twinhub/home").mode == 0o755
    shared = storage.file("/srv/twinhub/shared")
    assert (shared.mode, shared.gid) == (0o2775, 100)
    published = storage.file("/srv/twinhub/shared/published")
    assert (published.uid, published.gid, published.mode) == (1000, 100, 0o2775)


def test_home_service_creates_private_homes_once(host, storage):
    user = f"u{uuid.uuid4().hex[:8]}"
    code, body = put_home(host, user)
    assert code == 201, body
    home = storage.file(f"/srv/twinhub/home/{user}")
    assert (home.uid, home.gid, home.mode) == (1000, 100, 0o700)
    assert put_home(host, user)[0] == 200
    assert put_home(host, user, token="wrong-token-wrong-token-wrong-token")[0] == 403
    assert put_home(host, "..")[0] == 400
    assert put_home(host, "Alice/../../etc")[0] in (400, 404)


def test_owner_reads_and_writes_own_home_over_nfs(host):
    user = f"u{uuid.uuid4().hex[:8]}"
    assert put_home(host, user)[0] == 201
    host.check_output("echo 'my notebook' > /tmp/nb.txt")
    host.check_output(f"nfs-cp /tmp/nb.txt {nfs(f'home/{user}/nb.txt', 1000)}")
    assert host.check_output(f"nfs-cat {nfs(f'home/{user}/nb.txt', 1000)}") == "my notebook"


def test_root_on_a_client_cannot_write_or_read_a_home(host):
    user = f"u{uuid.uuid4().hex[:8]}"
    assert put_home(host, user)[0] == 201
    host.check_output("echo x > /tmp/x.txt")
    assert host.run(f"nfs-cp /tmp/x.txt {nfs(f'home/{user}/root.txt')}").rc != 0
    assert host.run(f"nfs-ls {nfs(f'home/{user}')}").rc != 0


def test_another_user_cannot_list_a_home(host):
    user = f"u{uuid.uuid4().hex[:8]}"
    assert put_home(host, user)[0] == 201
    assert host.run(f"nfs-ls {nfs(f'home/{user}', 1001)}").rc != 0
    assert host.run(f"nfs-ls {nfs(f'home/{user}', 1000)}").rc == 0


def test_shared_area_writable_by_two_users_group_kept(host, storage):
    name = f"s{uuid.uuid4().hex[:6]}"
    host.check_output("echo one > /tmp/one.txt && echo two > /tmp/two.txt")
    host.check_output(f"nfs-cp /tmp/one.txt {nfs(f'shared/{name}-1.txt', 1000)}")
    host.check_output(f"nfs-cp /tmp/two.txt {nfs(f'shared/{name}-2.txt', 1001)}")
    listing = host.check_output(f"nfs-ls {nfs('shared', 1001)}")
    assert f"{name}-1.txt" in listing
    assert f"{name}-2.txt" in listing
    assert storage.file(f"/srv/twinhub/shared/{name}-2.txt").gid == 100
