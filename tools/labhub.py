"""The lab's hub as a user sees it: address, login, servers, kernels, failover.

Part of the lab toolkit (tools/): used by tests/e2e and bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import requests
from hubrun import Hub, execute, open_kernel, run_code
from labkit import ROOT, ansible_playbook, lab, lab_exec

LAB = lab()
# The lab's public names (hub.twinhub.lab, <user>.hub.twinhub.lab) resolve
# to its proxy in this process (tools/labkit.py): requests go through NGINX
# with the real name for SNI, Host and the certificate.
LAB.resolve_names()
HUBS = tuple(LAB.hubs)
PASSWORD_FILE = ROOT / ".secrets" / "lab" / "lab_login_password"
CA = str(ROOT / ".secrets" / "lab" / "ca" / "ca.crt")
INVENTORY = LAB.inventory


def container_ip(host: str) -> str:
    return LAB.ip(host)


def active_hub(timeout: float = 90) -> tuple[str, str]:
    """(host, url) of the hub pair member that serves (holds the leader lock)."""
    deadline = time.monotonic() + timeout
    while not (serving := LAB.serving_hubs()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no hub of {HUBS} answered /hub/health within {timeout}s")
        time.sleep(1)
    return serving[0], f"http://{container_ip(serving[0])}:{LAB.hub_port}"


def lab_hub() -> Hub:
    """The lab's hub as users reach it: through NGINX at the public name, the lab CA trusted."""
    active_hub()  # one serves
    hub = Hub(proxy_url())
    hub.verify = CA
    hub.password = PASSWORD_FILE.read_text().strip()
    return hub


def password_logins(hub: Hub, name: str) -> float:
    """The login form as users see it (ldap and pam alike): the right password
    lands on /hub/home as name; a wrong one, and a name nobody has, get the
    same login error (no telling who exists). Seconds of the right login."""
    t0 = time.monotonic()
    session, r = hub.login_attempt(name)
    seconds = time.monotonic() - t0
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert r.headers["location"] == "/hub/home"
    assert session.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == name
    for who, password in ((name, "not-" + hub.password), ("nobody.here", None)):
        _, refused = hub.login_attempt(who, password)
        assert refused.status_code == 403, (who, refused.status_code)
        assert "Invalid username or password" in refused.text
    return seconds


def server_url(hub: Hub, api, name: str) -> str:
    """The user's server's URL as the hub gives it (its own host with per-user origins), no trailing slash."""
    url = api.get(f"{hub.url}/hub/api/users/{quote(name, safe='')}", timeout=30).json()["servers"][""]["url"]
    return (url if url.startswith("http") else hub.url + url).rstrip("/")


class User:
    """A user of the lab's hub: logged in through the form, a token, their server."""

    def __init__(self, hub: Hub, name: str, session: requests.Session | None = None, token_scopes: list[str] | None = None):
        self.hub, self.name = hub, name
        # The hub's URLs carry the name escaped for a path (john.doe stays, @ is %40).
        self.path = quote(name, safe="")
        self.session = session or hub.login(name)
        self.api = hub.api(hub.token(self.session, name, token_scopes))

    def spawn(self, profile: str = "small", timeout: float = 150) -> float:
        t0 = time.monotonic()
        r = self.api.post(f"{self.hub.url}/hub/api/users/{self.path}/server", json={"profile": profile})
        assert r.status_code in (201, 202), r.text
        self.hub.wait_ready(self.api, self.name, timeout=timeout)
        return time.monotonic() - t0

    def stop(self, timeout: float = 60) -> None:
        r = self.api.delete(f"{self.hub.url}/hub/api/users/{self.path}/server")
        assert r.status_code in (202, 204), r.text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.api.get(f"{self.hub.url}/hub/api/users/{self.path}").json().get("servers"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.name}'s server did not stop")

    def stop_quietly(self) -> None:
        try:
            self.stop()
        except Exception as exc:  # teardown: report, do not mask the result
            print(f"could not stop {self.name}'s server: {exc}")

    def run(self, code: str, owner: User | None = None) -> str:
        """Run code in a fresh kernel of the user's server (or of owner's, shared with this user), through the hub's proxy."""
        owner = owner or self
        base = server_url(self.hub, owner.api, owner.name)
        kernel = self.api.post(f"{base}/api/kernels", json={"name": "python3"})
        assert kernel.status_code == 201, kernel.text
        kid = kernel.json()["id"]
        try:
            token = self.api.headers["Authorization"].split()[1]
            ws = base.replace("https://", "wss://").replace("http://", "ws://") + f"/api/kernels/{kid}/channels"
            return asyncio.run(run_code(ws, token, code, ca_certs=CA if base.startswith("https") else None))
        finally:
            self.api.delete(f"{base}/api/kernels/{kid}")


def oidc_session(hub: Hub, name: str, password: str | None = None) -> requests.Session:
    """Log in as a browser does with auth.type oidc: the hub sends it to the
    provider's login page (login.twinhub.lab), which sends it back with a code."""
    from oidcflow import portal_login

    s = hub.session()
    page = s.get(f"{hub.url}/hub/oauth_login?next=%2Fhub%2Fhome", timeout=30)
    r = portal_login(s, page, name, password or hub.password)
    assert r.url.startswith(hub.url + "/hub/"), (r.status_code, r.url, r.text[:300])
    s.headers["X-XSRFToken"] = s.cookies.get("_xsrf", domain=hub.url.split("/")[2]) or ""
    return s


# The auth.type the lab's hubs run with now (lab_auth), read from a hub
# host's platform config once, then kept as use_auth changes it.
_auth: list[str] = []


def current_auth() -> str:
    if not _auth:
        import yaml

        cfg = yaml.safe_load(lab_exec(HUBS[0], "cat", "/etc/twinhub/platform.yaml").stdout)
        _auth.append(cfg["auth"]["type"])
    return _auth[0]


def deploy_hubs(**lab_vars: str) -> float:
    """playbooks/hub.yml with these lab_* variables (the rest: the inventory's); seconds until a hub serves."""
    t0 = time.monotonic()
    extra = [a for k, v in lab_vars.items() for a in ("-e", f"{k}={v}")]
    r = ansible_playbook("-i", str(INVENTORY), "playbooks/facts.yml", "playbooks/hub.yml", *extra)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    active_hub()
    return time.monotonic() - t0


def use_auth(kind: str) -> float:
    """Deploy the lab's hubs with auth.type `kind` (lab_auth: ldap, oidc or pam),
    unless they run with it already; seconds until one serves (0 when unchanged)."""
    if current_auth() == kind:
        return 0.0
    seconds = deploy_hubs(lab_auth=kind)
    _auth[0] = kind
    return seconds


def use_swarm_spawner(kind: str) -> float:
    """Deploy the lab's hubs with spawner.swarm_spawner `kind` (twinhub or upstream), keeping
    the auth they run with; seconds until one serves (0 when unchanged)."""
    import yaml

    deployed = yaml.safe_load(lab_exec(HUBS[0], "cat", "/etc/twinhub/platform.yaml").stdout)
    if deployed["spawner"].get("swarm_spawner", "twinhub") == kind:
        return 0.0
    return deploy_hubs(lab_auth=current_auth(), lab_swarm_spawner=kind)


def machine_cpu_seconds() -> float:
    """CPU time this whole machine has used since boot (every lab host, users' servers, the tests), in seconds."""
    import os

    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> dict[str, float]:
    """CPU time each lab host's container has used, in seconds.

    Read from the container's cgroup on this machine: Docker's stats API
    answers 0 for containers that run an engine of their own (cgroup v1).
    On cgroup v1 the containers a host's own engine runs (users' servers on
    a worker) are accounted beside it, not in it: machine_cpu_seconds()
    counts them.
    """
    from pathlib import Path

    def used(host: str) -> float:
        cid = LAB.container(host).id
        for path, scale in (
            (f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e9),  # v1, cgroupfs driver
            (f"/sys/fs/cgroup/cpuacct/system.slice/docker-{cid}.scope/cpuacct.usage", 1e9),  # v1, systemd
            (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e6),  # v2, cgroupfs driver
            (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e6),  # v2, systemd
        ):
            with contextlib.suppress(OSError):
                text = Path(path).read_text()
                if path.endswith("cpu.stat"):
                    text = dict(line.split() for line in text.splitlines())["usage_usec"]
                return int(text) / scale
        raise RuntimeError(f"no CPU accounting found for {host}'s container {cid[:12]}")

    return {host: used(host) for host in LAB.hosts}


class Directory:
    """The lab's directory (ldap role), changed as an operator would: ldapmodify
    over ldapi:// on its host, slapd stopped and started with systemctl."""

    def __init__(self) -> None:
        self.host = LAB.group("ldap")[0]
        self.suffix = LAB.setting("ldap_suffix", self.host)

    def person(self, uid: str) -> str:
        return f"uid={uid},ou=people,{self.suffix}"

    def modify(self, ldif: str) -> None:
        lab_exec(self.host, "sh", "-c", f"ldapmodify -Q -Y EXTERNAL -H ldapi:/// <<'EOF'\n{ldif}\nEOF")

    def members(self, group: str) -> list[str]:
        out = lab_exec(
            self.host, "ldapsearch", "-Q", "-LLL", "-Y", "EXTERNAL", "-H", "ldapi:///",
            "-b", f"cn={group},ou=groups,{self.suffix}", "-s", "base", "member",
        ).stdout  # fmt: skip
        return [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("member: ")]

    def set_members(self, group: str, members: list[str]) -> None:
        lines = "\n".join(f"member: {m}" for m in members)
        self.modify(f"dn: cn={group},ou=groups,{self.suffix}\nchangetype: modify\nreplace: member\n{lines}")

    @contextlib.contextmanager
    def without(self, group: str, uid: str):
        """uid taken out of group (someone else stays: groupOfNames needs a member), then put back."""
        before = self.members(group)
        assert self.person(uid) in before, (uid, before)
        self.set_members(group, [m for m in before if m != self.person(uid)] or [self.person("alice")])
        try:
            yield
        finally:
            self.set_members(group, before)

    @contextlib.contextmanager
    def down(self):
        """slapd stopped, then started again."""
        lab_exec(self.host, "systemctl", "stop", "slapd")
        try:
            yield
        finally:
            lab_exec(self.host, "systemctl", "start", "slapd")


def service_name(user: str) -> str:
    """The Swarm service of user's server: the name prefix and the user's name escaped (hubconfig.names)."""
    from hubconfig import names

    return f"twinhub-{names.escape(user)}"


def service_of(user: str, manager: str = "services") -> dict:
    out = lab_exec(manager, "docker", "service", "inspect", service_name(user)).stdout
    return json.loads(out)[0]


def running_task(user: str, manager: str = "services") -> dict:
    out = lab_exec(
        manager, "docker", "service", "ps", service_name(user), "--filter", "desired-state=running", "--format", "{{json .}}"
    ).stdout
    tasks = [json.loads(line) for line in out.splitlines()]
    assert len(tasks) == 1, tasks
    return tasks[0]


def task_container(user: str, node: str) -> str:
    out = lab_exec(node, "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service_name(user)}").stdout
    assert out.strip(), f"no container of {service_name(user)} on {node}"
    return out.split()[0]


# --- failover and switching through the proxy (tests and bench/) ---


def proxy_url() -> str:
    """The hub through NGINX, at the platform's public name."""
    return f"https://{LAB.hub_name}"


def db_ip() -> str:
    return container_ip("services")


class Poller(threading.Thread):
    """Calls the URLs in turn and records (start, end, url, status).

    Closed loop (default): one request at a time, `interval` s apart. With
    `rate`: open loop, a new request every 1/rate s whatever the others do
    (a held request does not slow the load down), up to 200 in flight.
    """

    def __init__(self, session: requests.Session, urls: list[str], interval: float = 0.1, rate: float | None = None):
        super().__init__(daemon=True)
        self.session, self.urls, self.interval, self.rate = session, urls, interval, rate
        self.results: list[tuple[float, float, str, int]] = []
        self.errors: list[str] = []  # why requests got no answer (status 0)
        self.resent = 0  # GETs sent again after the server closed an idle connection
        self._halt = threading.Event()

    def call(self, url: str) -> None:
        t0 = time.monotonic()
        status = 0
        # As browsers do (RFC 9112 9.3.1), a GET whose reused keep-alive
        # connection the server closed before any answer (an NGINX reload
        # closes its idle connections) is sent once more on a new one;
        # counted in `resent`, never hidden. Any other error is a failure.
        for attempt in (1, 2):
            try:
                status = self.session.get(url, timeout=60).status_code
                break
            except requests.RequestException as exc:
                if attempt == 1 and "Remote end closed connection without response" in str(exc):
                    self.resent += 1
                    continue
                self.errors.append(f"{exc.__class__.__name__}: {exc}"[:300])
                break
        self.results.append((t0, time.monotonic(), url, status))

    def run(self) -> None:
        if self.rate is None:
            while not self._halt.is_set():
                for url in self.urls:
                    self.call(url)
                self._halt.wait(self.interval)
            return
        # requests.Session is not thread-safe for concurrent use of one
        # connection pool per host beyond its size: enlarge the pool.
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=200)
        self.session.mount("https://", adapter)
        with ThreadPoolExecutor(200) as pool:
            n, t_next = 0, time.monotonic()
            while not self._halt.is_set():
                pool.submit(self.call, self.urls[n % len(self.urls)])
                n += 1
                t_next += 1 / self.rate
                self._halt.wait(max(0.0, t_next - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join(90)

    def achieved_rate(self) -> float:
        """Requests per second over the run."""
        span = max(r[1] for r in self.results) - min(r[0] for r in self.results)
        return len(self.results) / span

    def failures(self) -> list[tuple[float, float, str, int]]:
        return [r for r in self.results if r[3] != 200]

    def summary(self) -> str:
        """'N failed of M requests' and what failed (status 0: no answer)."""
        failed = self.failures()
        kinds = sorted({(url.rsplit("/", 2)[-2] + "/" + url.rsplit("/", 1)[-1], status) for _, _, url, status in failed})
        return (
            f"{len(failed)} failed of {len(self.results)} requests"
            + (f" {kinds}" if kinds else "")
            + (f" {self.errors[:3]}" if self.errors else "")
        )

    def longest_gap(self, url: str, since: float) -> float:
        """Longest time without a good answer from url after `since` (the outage a user sees)."""
        ends = [since, *sorted(end for _, end, u, status in self.results if u == url and status == 200 and end >= since)]
        return max(b - a for a, b in itertools.pairwise(ends)) if len(ends) > 1 else float("inf")


class KernelLinks(threading.Thread):
    """Kernel websockets held open through NGINX and used all along, as JupyterLab does.

    Each link runs `1 + 1` every `interval` s on its open websocket. A drop
    is the websocket closing or failing (the link then reconnects, so a run
    goes on measuring); a late answer (over 10 s) counts as a drop too.
    """

    def __init__(self, urls: list[str], token: str, interval: float = 0.5):
        super().__init__(daemon=True)
        self.urls, self.token, self.interval = urls, token, interval
        self.drops: list[tuple[float, int, str]] = []  # (when, link, why)
        self.answers = [0] * len(urls)
        self.ready = threading.Event()
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start_links/stop
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        conns = [await open_kernel(url, self.token, CA) for url in self.urls]
        for conn in conns:
            assert await execute(conn, "1 + 1", timeout=30) == "2"
        self.ready.set()
        await asyncio.gather(*(self._link(i, conn) for i, conn in enumerate(conns)))

    async def _link(self, i: int, conn) -> None:
        while not self._halt.is_set():
            try:
                assert await execute(conn, "1 + 1", timeout=10) == "2"
                self.answers[i] += 1
            except (ConnectionError, TimeoutError, OSError, AssertionError) as exc:
                self.drops.append((time.monotonic(), i, f"{exc.__class__.__name__}: {exc}"))
                conn.close()
                while not self._halt.is_set():
                    try:
                        conn = await open_kernel(self.urls[i], self.token, CA)
                        break
                    except Exception:  # any failure to reconnect: try again
                        await asyncio.sleep(0.5)
            await asyncio.sleep(self.interval)
        conn.close()

    def start_links(self) -> KernelLinks:
        self.start()
        assert self.ready.wait(60), "the kernel websockets did not open"
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        self._halt.set()
        self.join(30)

    def summary(self) -> str:
        return f"{len(self.drops)} websocket drop(s) of {len(self.urls)} kept open, {sum(self.answers)} round trips"


class Bob:
    """A user working through the proxy: a session cookie, a token, a kernel."""

    def __init__(self):
        hub = lab_hub()
        self.hub = hub
        self.session = hub.login("bob")
        self.token = hub.token(self.session, "bob")
        self.api = hub.api(self.token)
        # bob's server on its own origin, https://bob.<hub name>/user/bob
        self.base = f"https://bob.{LAB.hub_name}/user/bob"

    def start(self) -> None:
        r = self.api.post(f"{self.hub.url}/hub/api/users/bob/server", json={"profile": "small"})
        assert r.status_code in (201, 202, 400), r.text  # 400: already running
        self.hub.wait_ready(self.api, "bob", timeout=180)
        assert server_url(self.hub, self.api, "bob") == self.base
        r = self.api.post(f"{self.base}/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        self.kernel = r.json()["id"]

    def run(self, code: str) -> str:
        ws = self.base.replace("https://", "wss://") + f"/api/kernels/{self.kernel}/channels"
        return asyncio.run(run_code(ws, self.token, code, ca_certs=CA))

    def kernel_links(self, count: int = 2) -> KernelLinks:
        """count kernel websockets held open and used while something happens (the first is bob's kernel)."""
        kernels = getattr(self, "kernels", [self.kernel])
        while len(kernels) < count:
            r = self.api.post(f"{self.base}/api/kernels", json={"name": "python3"})
            assert r.status_code == 201, r.text
            kernels.append(r.json()["id"])
        self.kernels = kernels
        ws = self.base.replace("https://", "wss://")
        return KernelLinks([f"{ws}/api/kernels/{k}/channels" for k in kernels[:count]], self.token).start_links()

    def logged_in(self) -> bool:
        r = self.session.get(f"{self.hub.url}/hub/api/user", timeout=30)
        return r.status_code == 200 and r.json()["name"] == "bob"

    def poller(self) -> Poller:
        p = Poller(self.api, [f"{self.hub.url}/hub/api/users/bob", f"{self.base}/api/status"])
        p.start()
        time.sleep(1)
        return p


def sessions_by_address(where: str) -> dict[str, int]:
    """Sessions on the hub database that match `where` (SQL on pg_stat_activity), counted by client address."""
    sql = f"SELECT host(client_addr), count(*) FROM pg_stat_activity WHERE datname = 'jupyterhub' AND {where} GROUP BY 1"
    out = lab_exec("services", "su", "postgres", "-c", f'psql -tA -d jupyterhub -c "{sql}"').stdout
    return {line.split("|")[0]: int(line.split("|")[1]) for line in out.splitlines() if "|" in line}


def hub_connections() -> dict[str, int]:
    """Sessions of JupyterHub itself (not the leader supervisors) on the hub database, by client address."""
    return sessions_by_address("usename = 'jupyterhub' AND application_name NOT LIKE 'twinhub-leader%'")


def wait_serving(host: str, timeout: float = 90) -> float:
    """Seconds until `host` is the hub that serves."""
    t0 = time.monotonic()
    served, _ = active_hub(timeout)
    while served != host:
        assert time.monotonic() - t0 < timeout, f"{host} did not take over within {timeout}s (serving: {served})"
        time.sleep(0.2)
        served, _ = active_hub(timeout)
    return time.monotonic() - t0


def leader_sessions() -> dict[str, int]:
    """The hubs' leader supervisors on the hub database (holder and standby alike), by client address."""
    return sessions_by_address("application_name = 'twinhub-leader'")


def wait_standby(host: str, timeout: float = 120) -> float:
    """Seconds until host's hub stands by: its container runs and its leader
    supervisor waits on the lock in the database, so it takes over the moment
    the serving hub's session ends.

    A running container is not enough: after a restart (of the hub, or of
    its whole host) the supervisor needs a moment to connect, and a serving
    hub killed before then comes back (systemd, ~3-4 s) and takes its own lock
    again: no failover happens.
    """
    t0 = time.monotonic()
    address = container_ip(host)
    state = "its hub container is not running"
    while time.monotonic() - t0 < timeout:
        r = lab_exec(host, "docker", "inspect", "-f", "{{.State.Running}}", "twinhub-hub", check=False)
        if r.stdout.strip() == "true":
            state = "its leader supervisor has no session on the hub database"
            if leader_sessions().get(address) and host not in LAB.serving_hubs():
                return time.monotonic() - t0
        time.sleep(1)
    raise AssertionError(f"{host}'s hub did not stand by within {timeout}s: {state}")


def switch(to: str, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    """playbooks/switch.yml to `to` (extra: more ansible-playbook arguments); its result and seconds."""
    t0 = time.monotonic()
    r = ansible_playbook("-i", str(INVENTORY), "playbooks/switch.yml", "-e", f"twinhub_preferred_hub={to}", *extra)
    return r, time.monotonic() - t0


def other_hub(host: str) -> str:
    return next(h for h in HUBS if h != host)


def wait_standby_reaches(user: str, timeout: float = 90) -> float:
    """Seconds until every hub container can open a connection to user's server.

    A hub taking over must reach the servers it adopts over the overlay; a
    host learns a new task's overlay address by Docker's gossip (networkdb,
    with a full resync every 30 s), so right after a server starts the
    standby's host may not know it yet.
    """
    task = running_task(user)
    attachments = json.loads(lab_exec("services", "docker", "inspect", "-f", "{{json .NetworksAttachments}}", task["ID"]).stdout)
    ip = next(a["Addresses"][0].split("/")[0] for a in attachments if a["Network"]["Spec"]["Name"] == "twinhub-notebooks")
    probe = f"import socket; socket.create_connection(({ip!r}, 8888), 2).close()"
    t0 = time.monotonic()
    for host in HUBS:
        while lab_exec(host, "docker", "exec", "twinhub-hub", "python", "-c", probe, check=False).returncode != 0:
            assert time.monotonic() - t0 < timeout, f"{host}'s hub cannot reach {user}'s server at {ip}"
            time.sleep(1)
    return time.monotonic() - t0


# The lab's Slurm clusters (inventories/lab: slurm_alpha, slurm_beta): each
# worker is its cluster's controller and compute node.
SLURM_CLUSTERS = {"alpha": "worker-1", "beta": "worker-2"}


def slurm_cluster(name: str, key: bytes | None = None):
    """The cluster's slurmrestd as the hub reaches it (hubconfig.slurm), with its token key unless given one."""
    from hubconfig.slurm import SlurmCluster

    if key is None:
        key = (ROOT / ".secrets" / "lab" / f"slurm_jwt_key_{name}").read_bytes().strip()
    host = SLURM_CLUSTERS[name]
    return SlurmCluster(name, f"http://{LAB.ip(host)}:{LAB.hostvars[host].get('slurm_rest_port', 6820)}", key)


def slurm_job(name: str, user: str) -> dict[str, str]:
    """user's one job on the cluster as squeue shows it (id, state, user, cores, memory, time, node); {} if none."""
    fields = ["id", "state", "user", "cores", "memory", "time", "node"]
    out = lab_exec(SLURM_CLUSTERS[name], "squeue", "--noheader", "--user", user, "--format", "%i %T %u %C %m %l %N").stdout
    jobs = [dict(zip(fields, line.split(), strict=False)) for line in out.split("\n") if line.strip()]
    assert len(jobs) <= 1, jobs
    return jobs[0] if jobs else {}


def slurm_gone(name: str, user: str, timeout: float = 20) -> bool:
    """user has no job left on the cluster (a cancelled job is COMPLETING for a moment)."""
    deadline = time.monotonic() + timeout
    while slurm_job(name, user):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True
