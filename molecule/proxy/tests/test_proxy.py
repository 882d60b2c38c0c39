"""NGINX in front of two stand-in hubs: TLS, failover, the request hold, logs, keepalived."""

import json
import os
import subprocess
import time

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]


def host(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


PROXY, PROXY2, HUB_A, HUB_B = host("proxy1"), host("proxy2"), host("hub-a"), host("hub-b")
CURL = "curl -s --max-time 40 --cacert /usr/local/share/ca-certificates/twinhub-platform-ca.crt"


def get(path="/hub/health", extra=""):
    out = PROXY.check_output(f"{CURL} {extra} https://proxy1{path}")
    return json.loads(out)


@pytest.fixture(autouse=True)
def hubs_back_up():
    """Both stand-in hubs run before and after every test, and no test's timer outlives it."""
    for h in (HUB_A, HUB_B):
        h.run("systemctl start standin-hub")
    yield
    for h in (HUB_A, HUB_B):
        h.run("systemctl stop 'run-r*.timer'")
        h.run("rm -f /run/standin-unhealthy")
        h.run("systemctl start standin-hub")
    time.sleep(1)


def test_each_users_host_is_served_with_a_certificate_for_it():
    # One origin per user: <name>.<twinhub_hub_name> reaches the hubs with
    # its Host kept (the hub's proxy routes by it), and the platform CA's
    # certificate covers it (curl checks the name against the CA).
    name = "john-2edoe.jupyter.molecule.test"
    out = PROXY.check_output(f"{CURL} --resolve {name}:443:127.0.0.1 https://{name}/user/john.doe/api/status")
    assert json.loads(out)["host"] == name
    assert json.loads(out)["path"] == "/user/john.doe/api/status"
    # A name outside the platform's is not one the certificate covers.
    assert PROXY.run(f"{CURL} --resolve a.b.jupyter.molecule.test:443:127.0.0.1 https://a.b.jupyter.molecule.test/").rc != 0


def test_http_redirects_to_https():
    out = PROXY.check_output("curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://proxy1/hub/login?next=x")
    assert out == "301 https://proxy1/hub/login?next=x"


def test_tls_is_modern_with_hsts():
    assert PROXY.run(f"{CURL} --tlsv1.1 --tls-max 1.1 https://proxy1/").rc != 0
    for version in ("1.2", "1.3"):
        r = PROXY.run(f"{CURL} -o /dev/null -D - --tlsv{version} --tls-max {version} https://proxy1/hub/health")
        assert r.rc == 0, r.stderr
        assert "strict-transport-security: max-age=63072000; includesubdomains" in r.stdout.lower()
    assert PROXY.file("/etc/nginx/tls/proxy.key").mode & 0o007 == 0


def test_active_hub_serves():
    assert get()["hub"] == "hub-a"


def test_hub_pages_go_to_the_hub_and_the_rest_to_the_hosts_proxy():
    # /hub/ straight to the hub's own port (a hub that is down refuses, so
    # even a POST is held); users' servers through the host's proxy, which
    # outlives the hub.
    assert (get("/hub/login")["port"], get("/user/alice/api/status")["port"], get("/")["port"]) == (8081, 8000, 8000)


def test_standby_serves_when_the_active_hub_is_down():
    HUB_A.check_output("systemctl stop standin-hub")
    assert get()["hub"] == "hub-b"
    # POSTs go there too: the active hub never saw them.
    out = PROXY.check_output(f"{CURL} -X POST --data-binary 'x=1' https://proxy1/hub/api/x")
    assert json.loads(out) == {"hub": "hub-b", "received": 3}


def test_request_waits_while_no_hub_answers():
    HUB_A.check_output("systemctl stop standin-hub")
    HUB_B.check_output("systemctl stop standin-hub")
    HUB_B.check_output("systemd-run --on-active=3 --timer-property=AccuracySec=100ms systemctl start standin-hub")
    t0 = time.monotonic()
    body = get("/hub/api/user?token=do-not-log-me")
    held = time.monotonic() - t0
    assert body["hub"] == "hub-b"
    assert 2.0 < held < 10, held
    entry = json.loads(PROXY.check_output("tail -n 1 /var/log/nginx/twinhub-access.json"))
    assert entry["http.response.status_code"] == 200
    assert float(entry["twinhub.held_s"]) > 2.0
    assert entry["url.path"] == "/hub/api/user"
    assert "do-not-log-me" not in PROXY.file("/var/log/nginx/twinhub-access.json").content_string


def test_post_body_survives_the_wait():
    HUB_A.check_output("systemctl stop standin-hub")
    HUB_B.check_output("systemctl stop standin-hub")
    HUB_A.check_output("systemd-run --on-active=2 --timer-property=AccuracySec=100ms systemctl start standin-hub")
    out = PROXY.check_output(f"head -c 100000 /dev/zero | {CURL} -X POST --data-binary @- https://proxy1/hub/api/users")
    assert json.loads(out) == {"hub": "hub-a", "received": 100000}


def test_no_hub_for_too_long_is_a_clean_502():
    HUB_A.check_output("systemctl stop standin-hub")
    HUB_B.check_output("systemctl stop standin-hub")
    t0 = time.monotonic()
    code = PROXY.check_output(f"{CURL} -o /dev/null -w '%{{http_code}}' https://proxy1/hub/health")
    assert code == "502"
    assert 19 < time.monotonic() - t0 < 30  # proxy_hold_timeout: 20


def test_websocket_upgrade_headers_reach_the_hub():
    # HTTP/1.1: browsers open websockets that way (HTTP/2 has no Upgrade).
    body = get("/user/alice/api/kernels/1/channels", "--http1.1 -H 'Upgrade: websocket' -H 'Connection: Upgrade'")
    assert (body["upgrade"], body["connection"]) == ("websocket", "upgrade")
    # Plain requests keep the connection to the hub alive instead.
    assert get()["connection"] is None


def post_size(path, size):
    """POST size bytes; the stand-in's answer (the size it received), or the status code NGINX gave instead."""
    out = PROXY.check_output(
        f"head -c {size} /dev/zero | {CURL} -w ' %{{http_code}}' -X POST --data-binary @- https://proxy1{path}"
    )
    body, _, code = out.rpartition(" ")
    return json.loads(body)["received"] if code == "200" else int(code)


def test_uploads_only_to_users_servers():
    # proxy_client_max_body_size 4m under /user/, proxy_hub_max_body_size 1m elsewhere.
    assert post_size("/user/alice/api/contents/data.bin", 2_000_000) == 2_000_000
    assert post_size("/user/alice/api/contents/data.bin", 5_000_000) == 413
    for path in ("/hub/login", "/hub/api/users", "/x"):
        assert post_size(path, 2_000_000) == 413, path
    assert post_size("/hub/api/users", 500_000) == 500_000


def statuses(host, count, parallel, curl_args, url="https://proxy1/hub/login"):
    out = host.check_output(
        f"seq {count} | xargs -P {parallel} -I{{}} {CURL} -o /dev/null -w '%{{http_code}}\\n' {curl_args} {url}"
    )
    return out.split()


def test_a_login_flood_is_slowed_and_other_clients_still_log_in():
    # proxy_rate_limits.login here: 1r/m, burst 5, per client address.
    password = "-X POST -d username=mallory -d password=guess"
    flood = statuses(PROXY, 60, 20, password)
    assert flood.count("429") >= 45, flood
    assert flood.count("200") <= 10, flood
    assert set(flood) <= {"200", "429"}, flood
    # Right after it: the flooding client's next password is refused, its
    # other requests are not counted; another client (proxy2's address)
    # logs in.
    assert statuses(PROXY, 1, 1, password) == ["429"]
    assert statuses(PROXY, 3, 1, "") == ["200"] * 3  # GET of the login page
    assert statuses(PROXY2, 3, 1, password) == ["200"] * 3
    log = PROXY.file("/var/log/nginx/error.log").content_string
    assert "limiting requests" in log
    assert 'zone "twinhub_login"' in log


def test_the_token_page_is_rate_limited():
    # proxy_rate_limits.token here: 1r/s, burst 3.
    codes = statuses(PROXY, 12, 12, "", "https://proxy1/hub/token")
    assert codes.count("429") >= 6, codes
    assert codes.count("200") >= 3, codes


def test_held_requests_share_one_health_poller():
    """200 requests held at once put one poller's load on the hubs, not 200 pollers'."""
    for h in (HUB_A, HUB_B):
        h.check_output("rm -f /run/standin-health.log && touch /run/standin-unhealthy")
    started = float(HUB_A.check_output("date +%s.%N"))
    # 200 requests at once, in the background (a transient unit on the proxy host).
    curl = f"{CURL} -o /dev/null -w '%{{http_code}}\\n' https://proxy1/hub/home"
    requests = f"seq 200 | xargs -P 200 -I{{}} {curl} > /run/held-codes"
    PROXY.check_output(f'systemd-run --collect --unit held-requests sh -c "{requests}"')
    # Once all of them are in NGINX (its stub_status counts their
    # connections), hub-a serves again.
    deadline = time.monotonic() + 90
    while True:
        status = PROXY.check_output("curl -s http://127.0.0.1:8080/stub_status")
        active = int(status.split("Active connections:")[1].split()[0])
        if active > 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert active > 200, status
    ended = float(HUB_A.check_output("rm /run/standin-unhealthy && date +%s.%N"))
    while PROXY.run("systemctl is-active -q held-requests").rc == 0 and time.monotonic() < deadline + 60:
        time.sleep(0.5)
    codes = PROXY.check_output("cat /run/held-codes").split()
    assert codes == ["200"] * 200, codes
    log = [json.loads(line) for line in PROXY.check_output("tail -n 200 /var/log/nginx/twinhub-access.json").splitlines()]
    held = [float(e["twinhub.held_s"]) for e in log if e["url.path"] == "/hub/home" and e["twinhub.held_s"]]
    assert len(held) >= 190, f"only {len(held)} of 200 requests were held"
    # The stand-ins count the health checks they get while not serving:
    # one poller makes a round (both hubs) every 0.1 s at most; a poller per
    # held request would have sent ~200 times as many.
    probes = sum(len(h.file("/run/standin-health.log").content_string.split()) for h in (HUB_A, HUB_B))
    print(f"\n{len(held)} requests held up to {max(held):.1f} s; {probes} health checks in {ended - started:.1f} s unhealthy")
    assert 10 < probes <= 2 * ((ended - started) / 0.1 + 2), (probes, ended - started)


def test_access_log_is_json():
    get("/hub/home")
    for line in PROXY.file("/var/log/nginx/twinhub-access.json").content_string.splitlines()[-5:]:
        entry = json.loads(line)
        assert {"@timestamp", "client.ip", "http.request.method", "upstream.address"} <= entry.keys()


def test_nbviewer_has_its_own_origin_and_gets_no_session():
    """nbviewer's name reaches nbviewer (not a hub) without the user's cookies or tokens; GET only."""
    resolve = "--resolve nbviewer.molecule.test:443:127.0.0.1"
    headers = "-H 'Cookie: jupyterhub-session-id=secret' -H 'Authorization: token secret'"
    page = json.loads(PROXY.check_output(f"{CURL} {resolve} {headers} https://nbviewer.molecule.test/localfile/alice/a.ipynb"))
    assert page["path"] == "/localfile/alice/a.ipynb"
    assert page["host"] == "nbviewer.molecule.test"
    assert page["cookie"] is None
    assert page["authorization"] is None
    assert get("/hub/health")["path"] == "/hub/health"  # the hub's name still reaches the hubs
    post = PROXY.check_output(f"{CURL} {resolve} -o /dev/null -w '%{{http_code}}' -X POST https://nbviewer.molecule.test/")
    assert post == "403"
    # A published notebook's script runs sandboxed: an opaque origin, no connections.
    headers = PROXY.check_output(f"{CURL} {resolve} -o /dev/null -D - https://nbviewer.molecule.test/localfile/a.ipynb").lower()
    csp = next(line for line in headers.splitlines() if line.startswith("content-security-policy:"))
    assert "sandbox allow-scripts" in csp
    assert "allow-same-origin" not in csp
    assert "connect-src 'none'" in csp
    # The certificate names nbviewer too.
    names = PROXY.check_output("openssl x509 -in /etc/nginx/tls/proxy.crt -noout -ext subjectAltName")
    assert "DNS:nbviewer.molecule.test" in names


def test_a_published_notebooks_page_links_back_to_the_visitors_own_server():
    """nbviewer's page of a published notebook gets "Open in twinhub": the same file in one's own server."""
    resolve = "--resolve nbviewer.molecule.test:443:127.0.0.1"

    def page(path: str) -> str:
        return PROXY.check_output(f"{CURL} {resolve} -H 'Accept: text/html' 'https://nbviewer.molecule.test{path}'")

    html = page("/localfile/john-2edoe/run%2042.ipynb")
    assert "<h1>/localfile/john-2edoe/run%2042.ipynb</h1>" in html  # the page itself is nbviewer's
    link = (
        '<a class="twinhub-open" target="_blank" rel="noopener"'
        ' href="https://proxy1/hub/user-redirect/lab/tree/shared/published/john-2edoe/run%2042.ipynb"'
    )
    assert link in html
    assert html.index("Open in twinhub</a>") < html.index("</body>")
    # Only on notebooks' pages, and never with a quote from the address in it.
    assert "twinhub-open" not in page("/localfile/john-2edoe/")
    assert "twinhub-open" not in page("/localfile/x%22onmouseover%3D%22alert(1).ipynb")
    quoted = PROXY.check_output(
        f"{CURL} {resolve} --path-as-is -H 'Accept: text/html' 'https://nbviewer.molecule.test/localfile/a\"b.ipynb'"
    )
    assert "twinhub-open" not in quoted


def test_owncloud_has_its_own_name_and_takes_big_uploads():
    """ownCloud's name reaches ownCloud with what its web and sync clients send; big bodies stream through."""
    resolve = "--resolve cloud.molecule.test:443:127.0.0.1"
    page = json.loads(PROXY.check_output(f"{CURL} {resolve} -u alice:pw https://cloud.molecule.test/remote.php/dav/files/alice/"))
    assert page["port"] == 8080
    assert page["path"] == "/remote.php/dav/files/alice/"
    assert page["host"] == "cloud.molecule.test"
    assert page["forwarded_proto"] == "https"
    assert page["authorization"].startswith("Basic ")  # WebDAV's login reaches ownCloud
    # 20 MB: over the hub's limits (1m, 4m here), under ownCloud's.
    sent = PROXY.check_output(
        f"head -c 20971520 /dev/zero | {CURL} {resolve} -X POST --data-binary @- https://cloud.molecule.test/remote.php/dav/uploads/alice/x"
    )
    assert json.loads(sent)["received"] == 20971520
    dav = PROXY.check_output(
        f"{CURL} {resolve} -o /dev/null -w '%{{http_code}} %{{redirect_url}}' https://cloud.molecule.test/.well-known/caldav"
    )
    assert dav == "301 https://cloud.molecule.test/remote.php/dav"
    names = PROXY.check_output("openssl x509 -in /etc/nginx/tls/proxy.crt -noout -ext subjectAltName")
    assert "DNS:cloud.molecule.test" in names


def test_the_hubs_nbviewer_link_leaves_the_hub_origin():
    out = PROXY.check_output(f"{CURL} -o /dev/null -w '%{{http_code}} %{{redirect_url}}' https://proxy1/services/nbviewer/")
    assert out == "302 https://nbviewer.molecule.test/"


def test_config_is_valid_and_alone():
    assert PROXY.run("nginx -t").rc == 0
    assert not PROXY.file("/etc/nginx/sites-enabled/default").exists


def test_virtual_address_moves_to_the_other_proxy():
    vip = "10.250.250.250"

    def holder():
        for p in (PROXY, PROXY2):
            if vip in p.check_output("ip -4 -o addr show"):
                return p
        return None

    deadline = time.monotonic() + 15
    while holder() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    if holder() is None:
        pytest.skip("keepalived could not bring up VRRP between these containers (see docs/proxy.md)")
    assert holder() is PROXY
    PROXY.check_output("systemctl stop nginx")
    try:
        deadline = time.monotonic() + 15
        while holder() is not PROXY2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert holder() is PROXY2
    finally:
        PROXY.check_output("systemctl start nginx")


def test_staging_mode_routes_opted_in_users_to_the_other_hub():
    """Runs last: re-converges the proxies in staging mode (then back)."""
    scenario = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def converge(*extra):
        r = subprocess.run(
            ["ansible-playbook", "-i", INVENTORY, os.path.join(scenario, "converge.yml"), *extra],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout[-3000:]

    converge("-e", "twinhub_mode=staging", "-e", "proxy_staging_server_name=staging.molecule.test")
    try:
        assert get()["hub"] == "hub-a"
        assert get(extra="--cookie twinhub_hub=staging")["hub"] == "hub-b"
        staging = "--resolve staging.molecule.test:443:127.0.0.1"
        out = PROXY.check_output(f"{CURL} {staging} https://staging.molecule.test/hub/health")
        assert json.loads(out)["hub"] == "hub-b"
        # No failover between independent hubs: the main name waits for hub-a.
        HUB_A.check_output("systemctl stop standin-hub")
        code = PROXY.check_output(f"{CURL} --max-time 5 -o /dev/null -w '%{{http_code}}' https://proxy1/hub/health || true")
        assert code in ("000", "502")
    finally:
        converge()
