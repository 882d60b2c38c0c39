"""The lab toolkit: one view of the lab for tools/lab.py, tests/ and bench/.

The topology comes from the real inventory as Ansible sees it
(`ansible-inventory --list`, group_vars included), the platform facts from
the inventory over the twinhub role's defaults (the same names the roles
read), and the hosts are driven through the Docker SDK: nothing here
hard-codes a host list or parses `docker` CLI output.

    from labkit import lab
    lab().ip("hub-a"); lab().exec("services", "docker", "node", "ls")
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "inventories" / "lab"
SECRETS = ROOT / ".secrets" / "lab"
# hubconfig (the platform's own code, e.g. hubconfig.names) for scripts run outside pytest.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))


@dataclass
class Result:
    """What a command on a lab host did (the shape of subprocess.CompletedProcess)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Result:
        if self.returncode != 0:
            raise subprocess.CalledProcessError(self.returncode, list(self.args), self.stdout, self.stderr)
        return self


def image(name: str) -> str:
    """Tag of a project image, from the environment or .cache/images.env."""
    key = "TWINHUB_IMAGE_" + name.upper().replace("-", "_")
    if key in os.environ:
        return os.environ[key]
    env = ROOT / ".cache" / "images.env"
    for line in env.read_text().splitlines() if env.exists() else []:
        k, _, v = line.partition("=")
        if k == key:
            return v
    raise RuntimeError(f"{key} unknown: run `./twinhub images` first")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def docker_client():
    import docker  # the venv's Docker SDK

    return docker.from_env(timeout=600)


EXECUTOR = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="labkit-exec")


def ansible_inventory(inventory: Path) -> dict[str, Any]:
    """`ansible-inventory --list` of an inventory: groups, hosts and their variables."""
    exe = shutil.which("ansible-inventory", path=str(Path(sys.executable).parent)) or "ansible-inventory"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    out = subprocess.run([exe, "-i", str(inventory), "--list"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def platform_defaults() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((ROOT / "roles" / "twinhub" / "defaults" / "main.yml").read_text())


@dataclass
class Lab:
    inventory: Path = INVENTORY
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.data:
            self.data = ansible_inventory(self.inventory)

    # -- topology, from the inventory -------------------------------------
    @property
    def hostvars(self) -> dict[str, dict[str, Any]]:
        return self.data.get("_meta", {}).get("hostvars", {})

    @property
    def hosts(self) -> list[str]:
        """Every host, in the inventory's order."""
        seen: list[str] = []

        def walk(group: str) -> None:
            for host in self.data.get(group, {}).get("hosts", []):
                if host not in seen:
                    seen.append(host)
            for child in self.data.get(group, {}).get("children", []):
                walk(child)

        walk("all")
        return seen

    def group(self, name: str) -> list[str]:
        out: list[str] = []
        node = self.data.get(name, {})
        out += node.get("hosts", [])
        for child in node.get("children", []):
            out += [h for h in self.group(child) if h not in out]
        return out

    def setting(self, name: str, host: str | None = None) -> Any:
        """A platform fact as the roles read it: the inventory's value, else the twinhub role's default."""
        host = host or self.hosts[0]
        value = self.hostvars.get(host, {}).get(name, platform_defaults().get(name))
        if isinstance(value, str) and "{{" in value and name == "twinhub_preferred_hub":
            return self.group("hubs")[0]  # the default: the first hub
        return value

    @property
    def hubs(self) -> list[str]:
        return self.group("hubs")

    @property
    def hub_name(self) -> str:
        """The platform's public name (twinhub_hub_name); users' servers are on <name>.<it>."""
        return self.setting("twinhub_hub_name")

    def resolve_names(self) -> None:
        """Resolve the lab's public names to its proxy, in this process only.

        The lab's names (hub.twinhub.lab and every <user>.hub.twinhub.lab)
        are in no DNS; rather than touch the machine's resolver, Python's
        getaddrinfo answers them with the proxy's address here. TLS still
        checks the name (SNI and the certificate are the real name's).
        """
        import socket

        suffix, proxy = self.hub_name, self.group("proxy")[0]
        original = getattr(socket.getaddrinfo, "twinhub_original", socket.getaddrinfo)
        # The lab's identity provider has a name of its own (login.twinhub.lab).
        others = {self.setting("lemonldap_portal_name"): idp for idp in self.group("lemonldap")[:1]}

        known: dict[str, tuple[float, str]] = {}

        def address_of(host: str) -> str:
            # Looked up when asked (the lab may be rebuilt meanwhile), kept 10 s.
            at, address = known.get(host, (0.0, ""))
            if time.monotonic() - at > 10 or not address:
                address = self.ip(host)
                known[host] = (time.monotonic(), address)
            return address

        def getaddrinfo(host, *args, **kwargs):
            if isinstance(host, str) and (host == suffix or host.endswith("." + suffix)):
                host = address_of(proxy)
            elif isinstance(host, str) and host in others:
                host = address_of(others[host])
            return original(host, *args, **kwargs)

        getaddrinfo.twinhub_original = original
        socket.getaddrinfo = getaddrinfo

    @property
    def preferred_hub(self) -> str:
        return self.setting("twinhub_preferred_hub")

    @property
    def hub_port(self) -> int:
        """The hub hosts' public port: their proxy (twinhub-chp), routed to whichever hub serves."""
        return int(self.setting("twinhub_hub_port"))

    @property
    def hub_api_port(self) -> int:
        """The hubs' own port: only the serving hub answers there."""
        return int(self.setting("twinhub_hub_api_port"))

    def users(self) -> tuple[list[str], list[str]]:
        """(allowed users, admins) of the lab's login (hub_platform_config.auth)."""
        auth = self.hostvars.get(self.hubs[0], {}).get("hub_platform_config", {}).get("auth", {})
        return list(auth.get("allowed_users", [])), list(auth.get("admin_users", []))

    def container_name(self, host: str) -> str:
        return self.hostvars.get(host, {}).get("ansible_host", host)

    # -- the hosts, through the Docker SDK ---------------------------------
    def container(self, host: str):
        return docker_client().containers.get(self.container_name(host))

    def running(self, host: str) -> bool:
        import docker

        try:
            return self.container(host).status == "running"
        except docker.errors.NotFound:
            return False

    def ip(self, host: str) -> str:
        """The host's address on the lab network ('' when it is not running)."""
        import docker

        try:
            networks = self.container(host).attrs["NetworkSettings"]["Networks"]
        except docker.errors.NotFound:
            return ""
        return next((n["IPAddress"] for n in networks.values() if n.get("IPAddress")), "")

    def exec(self, host: str, *cmd: str, check: bool = True, timeout: int = 60) -> Result:
        """Run a command on a lab host; stdout and stderr apart, like subprocess.run (and its TimeoutExpired).

        As with `docker exec` killed by a timeout, a command that outlives it
        goes on in the container.
        """
        api = docker_client().api
        exec_id = api.exec_create(self.container_name(host), list(cmd))["Id"]
        # exec_start returns when the command ends; the SDK has no timeout for it.
        future = EXECUTOR.submit(api.exec_start, exec_id, demux=True)
        try:
            stdout, stderr = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError as exc:
            raise subprocess.TimeoutExpired(list(cmd), timeout) from exc
        rc = api.exec_inspect(exec_id)["ExitCode"]
        result = Result(tuple(cmd), rc, (stdout or b"").decode(errors="replace"), (stderr or b"").decode(errors="replace"))
        return result.check() if check else result

    def stop(self, host: str, timeout: int = 5) -> None:
        self.container(host).stop(timeout=timeout)

    def start(self, host: str) -> None:
        self.container(host).start()

    def serving_hubs(self, timeout: float = 2) -> list[str]:
        """The hubs whose own /hub/health answers 200: with the leader lock, the one that serves.

        The lab's side of the question roles/hub/tasks/serving.yml answers
        for Ansible and the hold's Lua for NGINX.
        """
        serving = []
        for hub in self.hubs:
            address = self.ip(hub)
            try:
                with urllib.request.urlopen(f"http://{address}:{self.hub_api_port}/hub/health", timeout=timeout) as r:
                    if address and r.status == 200:
                        serving.append(hub)
            except (OSError, ValueError):
                pass
        return serving

    # -- monitoring, behind TLS and a login (monitoring role) --------------
    def monitoring_url(self, port: int = 9090) -> str:
        """Prometheus (9090) or Alertmanager (9093) on the monitoring host, by address (the certificate names it)."""
        return f"https://{self.ip(self.group('monitoring')[0])}:{port}"

    def monitoring_login(self) -> tuple[str, str]:
        """The lab's operator login for Prometheus and Alertmanager (generated once into .secrets/lab/)."""
        return "ops", (SECRETS / "monitoring_ops_password").read_text().strip()

    @property
    def ca_file(self) -> str:
        """The lab's platform CA, which signed the proxy's and monitoring's certificates."""
        return str(SECRETS / "ca" / "ca.crt")


@functools.cache
def lab(inventory: str = str(INVENTORY)) -> Lab:
    """The lab of an inventory (read once per process)."""
    return Lab(Path(inventory))


def lab_exec(host: str, *cmd: str, check: bool = True, timeout: int = 60) -> Result:
    """Run a command on a host of the lab (the default inventory's)."""
    return lab().exec(host, *cmd, check=check, timeout=timeout)


def ansible_playbook(*args: str, timeout: int = 600, facts_cache: Path | None = None) -> subprocess.CompletedProcess:
    """ansible-playbook from the venv with the project's ansible.cfg.

    Facts are kept in memory (never the project's cache of the lab's hosts),
    or in `facts_cache`: a directory of the caller's, for runs against the
    same throwaway hosts that need not gather their facts again.
    """
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_CACHE_PLUGIN="memory")
    if facts_cache is not None:
        env.update(ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(facts_cache))
    playbook = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run([str(playbook), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
