#!/usr/bin/env python3
"""twinhub lab substrate: a Docker engine, content-hashed images, lab hosts.

Sub-commands (all idempotent, all fast on rerun):
  engine   make sure a Docker engine answers (install Debian's docker.io and
           start dockerd in the background when there is none)
  images   build the base, lab and test images; an image whose inputs did not
           change is never rebuilt (tags are content hashes)
  env      print the image tags as shell assignments (for make and Molecule)
  up       start one systemd container per host of inventories/lab
  down     remove the lab containers, their volumes and network

Standard library only for `engine` and `images`; `up` and `info` read the
inventory and the hosts through the lab toolkit (tools/labkit.py: the
venv's Ansible and Docker SDK).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labkit import Lab

ROOT = Path(__file__).resolve().parent.parent
IMAGES_DIR = ROOT / "images"
CACHE_DIR = ROOT / ".cache"
REPO = os.environ.get("TWINHUB_IMAGE_REPO", "twinhub")

# The base image every other image builds on. A registry pull is the fast
# path on a normal machine; debootstrap is the offline path (air-gapped sites,
# this CI). TWINHUB_BASE_SOURCE=pull|debootstrap|auto (default auto).
BASE_TAG = f"{REPO}/base:bookworm"
BASE_PULL_REF = os.environ.get("TWINHUB_BASE_PULL_REF", "debian:bookworm")
DEBIAN_MIRROR = os.environ.get("TWINHUB_DEBIAN_MIRROR", "http://deb.debian.org/debian")

# name -> parent (another name here, or "base"). Children rebuild when the
# parent's image ID changes, because the ID is part of their content hash.
IMAGES: dict[str, str] = {
    "lab-host": "base",
    "lab-node": "lab-host",
    "probe": "base",
    "notebook": "base",
    "hub": "base",
    "relay": "base",
}
# Repository paths staged into an image's build context beside its own
# directory (and hashed with it).
EXTRA_CONTEXT: dict[str, list[str]] = {
    "hub": ["hubconfig", "pyproject.toml"],
}

# Images lab hosts load from archives (.cache/images): the probe for the
# engine tests, hub, notebook and relay for the registry to push.
LAB_ARCHIVES = ["probe", "hub", "notebook", "relay"]

LAB_NETWORK = "twinhub-lab"
LAB_LABEL = "io.twinhub.lab=1"

# How systemd runs in a container without --privileged (ENVIRONMENT.md):
# SYS_ADMIN for its mounts, host cgroups, tmpfs for /run. Molecule's hosts
# (tools/molecule_hosts.py) are started with the same set.
SYSTEMD_RUN_FLAGS = [
    "--cap-add",
    "SYS_ADMIN",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--cgroupns=host",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
]
# Docker-in-Docker nodes also manage iptables and overlay network namespaces
# (NET_ADMIN); `docker exec` into a nested container whose user is not root
# must open that process's namespaces, which needs SYS_PTRACE.
NODE_RUN_FLAGS = ["--cap-add", "NET_ADMIN", "--cap-add", "SYS_PTRACE"]


def log(msg: str) -> None:
    print(f"[lab] {msg}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def docker_ok() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


# --------------------------------------------------------------------------
# engine
# --------------------------------------------------------------------------
def ensure_engine(timeout: int = 90) -> None:
    if docker_ok():
        log("docker engine answers")
        return
    if not shutil.which("dockerd"):
        if os.geteuid() != 0:
            sys.exit("lab: no Docker engine and not root: install docker.io, or run as root")
        log("installing Debian's docker.io")
        apt_install(["docker.io"])
    log("starting dockerd in the background (no systemd on this machine)")
    logfile = open("/var/log/twinhub-dockerd.log", "ab")  # noqa: SIM115 - handed to the daemon
    subprocess.Popen(["dockerd"], stdout=logfile, stderr=logfile, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if docker_ok():
            log("docker engine answers")
            return
        time.sleep(1)
    sys.exit(f"lab: dockerd did not answer within {timeout}s; see /var/log/twinhub-dockerd.log")


def apt_install(packages: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    stamp = Path("/var/lib/apt/periodic/twinhub-update-stamp")
    if not stamp.exists() or time.time() - stamp.stat().st_mtime > 6 * 3600:
        run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env, stdout=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------
def image_id(ref: str) -> str | None:
    p = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


def extra_ca_bytes() -> bytes:
    """Extra CA certificates for image builds, from TWINHUB_EXTRA_CA_CERTS.

    A file or a directory of *.crt/*.pem files. Never stored in the repo: it
    is staged into each build context and hashed with it.
    """
    # Default: whatever CA bundle this machine's pip is told to trust
    # (PIP_CERT or pip's global.cert), so builds that pip behind the same
    # TLS-inspecting proxy work as the host does.
    src = os.environ.get("TWINHUB_EXTRA_CA_CERTS", "").strip() or os.environ.get("PIP_CERT", "").strip()
    if not src:
        p = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.cert"], capture_output=True, text=True)
        src = p.stdout.strip() if p.returncode == 0 else ""
    if not src:
        return b""
    path = Path(src)
    if path.is_dir():
        files = sorted([*path.glob("*.crt"), *path.glob("*.pem")])
    elif path.is_file():
        files = [path]
    else:
        sys.exit(
            f"lab: TWINHUB_EXTRA_CA_CERTS={src!r} is neither a file nor a directory "
            "(expected a PEM bundle or a directory of .crt files)"
        )
    return b"\n".join(f.read_bytes() for f in files)


def ensure_base() -> str:
    if image_id(BASE_TAG):
        return BASE_TAG
    source = os.environ.get("TWINHUB_BASE_SOURCE", "auto")
    if source not in ("auto", "pull", "debootstrap"):
        sys.exit(f"lab: TWINHUB_BASE_SOURCE={source!r}: expected auto, pull or debootstrap")
    if source in ("auto", "pull"):
        log(f"pulling {BASE_PULL_REF}")
        p = subprocess.run(["docker", "pull", "-q", BASE_PULL_REF], capture_output=True, text=True)
        if p.returncode == 0:
            run(["docker", "tag", BASE_PULL_REF, BASE_TAG])
            return BASE_TAG
        if source == "pull":
            sys.exit(f"lab: cannot pull {BASE_PULL_REF}: {p.stderr.strip()}")
        log("no registry answers; building the base offline with debootstrap")
    if not shutil.which("debootstrap"):
        apt_install(["debootstrap"])
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="twinhub-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,ca-certificates",
                "bookworm",
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            stdout=subprocess.DEVNULL,
        )
        # debootstrap leaves the host's resolver and apt caches behind.
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run(
            ["docker", "import", "--change", 'CMD ["/bin/bash"]', "-", BASE_TAG],
            stdin=tar.stdout,
            stdout=subprocess.DEVNULL,
        )
        tar.wait()
    log(f"base built offline in {time.monotonic() - t0:.0f}s")
    return BASE_TAG


def context_files(name: str) -> list[tuple[str, Path]]:
    """(path in the build context, file) for everything an image is built from."""
    directory = IMAGES_DIR / name
    files = [(str(f.relative_to(directory)), f) for f in directory.rglob("*") if f.is_file()]
    for extra in EXTRA_CONTEXT.get(name, []):
        src = ROOT / extra
        if src.is_file():
            files.append((extra, src))
        else:
            files += [(str(f.relative_to(ROOT)), f) for f in src.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    return sorted(files)


def context_hash(name: str, parent_id: str, extra_ca: bytes) -> str:
    h = hashlib.sha256()
    h.update(parent_id.encode())
    h.update(hashlib.sha256(extra_ca).digest())
    for rel, f in context_files(name):
        h.update(rel.encode())
        h.update(b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def image_tags(build: bool) -> dict[str, str]:
    """Tags of every image; with build=True, build the missing ones first."""
    extra_ca = extra_ca_bytes()
    base = ensure_base() if build else BASE_TAG
    ids = {"base": image_id(base)}
    if ids["base"] is None:
        sys.exit("lab: no base image; run `tools/lab.py images` first")
    tags: dict[str, str] = {"base": base}
    for name, parent in IMAGES.items():
        tag = f"{REPO}/{name}:{context_hash(name, ids[parent], extra_ca)}"
        if build and image_id(tag) is None:
            build_image(name, tag, tags[parent], extra_ca)
        tags[name] = tag
        ids[name] = image_id(tag) or ""
    return tags


def build_image(name: str, tag: str, parent: str, extra_ca: bytes) -> None:
    log(f"building {tag}")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="twinhub-ctx-") as tmp:
        ctx = Path(tmp) / "ctx"
        for rel, f in context_files(name):
            (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, ctx / rel)
        (ctx / "extra-ca").mkdir(exist_ok=True)
        if extra_ca:
            (ctx / "extra-ca" / "extra-ca.crt").write_bytes(extra_ca)
        cmd = ["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={parent}", "-t", tag, str(ctx)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.stderr.write(p.stdout + p.stderr)
            sys.exit(f"lab: building {tag} failed")
    log(f"built {tag} in {time.monotonic() - t0:.0f}s")


def env_name(name: str) -> str:
    return "TWINHUB_IMAGE_" + name.upper().replace("-", "_")


def write_env(tags: dict[str, str]) -> Path:
    CACHE_DIR.mkdir(exist_ok=True)
    path = CACHE_DIR / "images.env"
    path.write_text("".join(f"{env_name(n)}={t}\n" for n, t in tags.items()))
    return path


def save_archives(tags: dict[str, str], names: list[str]) -> None:
    """docker save images that lab nodes load into their own engine.

    Nodes mount .cache/images read-only; an archive is rewritten only when
    its tag changed (the tag is in the file name).
    """
    out = CACHE_DIR / "images"
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        tag = tags[name]
        target = out / f"{name}.tar"
        stamp = out / f"{name}.tag"
        if target.exists() and stamp.exists() and stamp.read_text() == tag:
            continue
        run(["docker", "save", "-o", str(target), tag])
        stamp.write_text(tag)


# --------------------------------------------------------------------------
# lab hosts
# --------------------------------------------------------------------------
def lab_hosts(inventory: Path) -> dict[str, dict]:
    """Hosts of a lab inventory with the container settings they ask for (as Ansible reads them)."""
    from labkit import Lab

    lab = Lab(inventory)
    return {host: lab.hostvars.get(host, {}) for host in lab.hosts}


def container_spec_label(cname: str) -> str:
    """The spec hash a running lab container was made from ('' when it is not running)."""
    import docker
    from labkit import docker_client

    try:
        container = docker_client().containers.get(cname)
    except docker.errors.NotFound:
        return ""
    return container.labels.get("io.twinhub.lab.spec", "") if container.status == "running" else ""


def up(inventory: Path) -> None:
    tags = image_tags(build=True)
    save_archives(tags, LAB_ARCHIVES)
    hosts = lab_hosts(inventory)
    secrets = ROOT / ".secrets" / "lab"
    secrets.mkdir(parents=True, exist_ok=True)
    secrets.parent.chmod(0o700)
    specs = {}
    for name, hvars in hosts.items():
        kind = hvars.get("lab_image", "lab-host")
        args = [*SYSTEMD_RUN_FLAGS, "-v", f"{CACHE_DIR / 'images'}:/opt/twinhub/images:ro"]
        if kind == "lab-node":
            args += NODE_RUN_FLAGS
        for cap in hvars.get("lab_capabilities") or []:
            args += ["--cap-add", cap]
        for alias in hvars.get("lab_network_aliases") or []:
            args += ["--network-alias", alias]
        for target, name_on_host in (hvars.get("lab_bind_mounts") or {}).items():
            source = CACHE_DIR / "lab" / name_on_host
            source.mkdir(parents=True, exist_ok=True)
            args += ["-v", f"{source}:{target}"]
        args.append(tags[kind])
        # The spec's hash is a label on the container: a host is recreated
        # when anything it is made from changes (image, flags, mounts).
        specs[name] = (hvars.get("ansible_host", name), args, hashlib.sha256("\0".join(args).encode()).hexdigest()[:12])
    current = all(container_spec_label(cname) == spec for cname, _, spec in specs.values())
    if current:
        log(f"{len(hosts)} lab hosts up (unchanged)")
        return
    # The lab is rebuilt as a whole: keeping some hosts would leave Swarm
    # membership and storage state that the new hosts do not share.
    log("(re)creating the lab hosts")
    down(keep_storage=True)
    run(["docker", "network", "create", "--label", LAB_LABEL, LAB_NETWORK], stdout=subprocess.DEVNULL)
    shutil.rmtree(CACHE_DIR / "facts", ignore_errors=True)
    started = []
    for name, (cname, args, spec) in specs.items():
        cmd = [
            "docker",
            "run",
            "-d",
            "--name",
            cname,
            "--hostname",
            name,
            "--network",
            LAB_NETWORK,
            "--label",
            LAB_LABEL,
            "--label",
            f"io.twinhub.lab.spec={spec}",
            *args,
            "/sbin/init",
        ]
        run(cmd, stdout=subprocess.DEVNULL)
        started.append(cname)
    for cname in started:
        wait_systemd(cname)
    log(f"{len(hosts)} lab hosts up ({len(started)} started)")


def wait_systemd(cname: str, timeout: int = 60) -> None:
    from labkit import docker_client

    container = docker_client().containers.get(cname)
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = container.exec_run(["systemctl", "is-system-running"]).output.decode().strip()
        if state in ("running", "degraded"):
            return
        time.sleep(0.5)
    sys.exit(f"lab: systemd in {cname} did not come up within {timeout}s (state {state!r})")


def down(keep_storage: bool = False) -> None:
    p = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LAB_LABEL}"], capture_output=True, text=True, check=True)
    ids = p.stdout.split()
    if ids:
        run(["docker", "rm", "-f", "-v", *ids], stdout=subprocess.DEVNULL)
    subprocess.run(["docker", "network", "rm", LAB_NETWORK], capture_output=True)
    # The lab's storage tree (users' files) goes with the lab, unless the
    # lab is only being rebuilt.
    if not keep_storage:
        shutil.rmtree(CACHE_DIR / "lab", ignore_errors=True)
    log(f"removed {len(ids)} lab containers")


def info(inventory: Path) -> None:
    """How to reach what the lab runs (grows with the platform): hosts, hubs and users from the inventory."""
    from labkit import Lab

    lab = Lab(inventory)
    print("\ntwinhub lab: hosts (docker exec -it NAME bash)")
    for host in lab.hosts:
        state = "running" if lab.running(host) else "not running"
        print(f"  {host:10s} {lab.container_name(host):24s} {state}")
    managers = lab.group("swarm_managers")
    if managers:
        print(f"\nSwarm: docker exec {lab.container_name(managers[0])} docker node ls")
    password = ROOT / ".secrets" / "lab" / "lab_login_password"
    serving = [(h, lab.ip(h)) for h in lab.serving_hubs()]
    if not serving or not password.exists():
        print("\nJupyterHub: not serving yet (deploy with `./twinhub up`).")
        return
    name, ip = serving[0]
    proxies = lab.group("proxy")
    proxy_ip = lab.ip(proxies[0]) if proxies else ""
    ca = ROOT / ".secrets" / "lab" / "ca" / "ca.crt"
    users, admins = lab.users()
    others = ", ".join(h for h in lab.hubs if h != name)
    print(f"\nJupyterHub through NGINX ({name} serves; {others} waits on the leader lock; preferred: {lab.preferred_hub}):")
    if proxy_ip:
        name_ = lab.hub_name
        print(f"  URL:       https://{name_}/   (certificate from the lab CA: {ca.relative_to(ROOT)})")
        print(f"             each user's server on https://<user>.{name_}/; nothing resolves these names here:")
        print(f"             curl --cacert {ca.relative_to(ROOT)} --resolve {name_}:443:{proxy_ip} https://{name_}/hub/login")
        print(f"             chromium --host-resolver-rules='MAP {name_} {proxy_ip}, MAP *.{name_} {proxy_ip}'")
    print(f"  hub direct: http://{ip}:{lab.hub_port}/")
    print(f"  users:     {', '.join(u for u in users if u not in admins)} (admin: {', '.join(admins)})")
    print(f"  password:  {password.read_text().strip()}   (from {password.relative_to(ROOT)})")
    print("  switch:    change twinhub_preferred_hub in inventories/lab, then")
    print("             ansible-playbook -i inventories/lab playbooks/switch.yml")
    monitors = lab.group("monitoring")
    if monitors and lab.ip(monitors[0]) and monitoring_ok(lab):
        user, _ = lab.monitoring_login()
        print(f"\nMonitoring (on {monitors[0]}; TLS from the lab CA, log in as {user}):")
        print(f"  Prometheus:   {lab.monitoring_url(9090)}/   (alerts: /alerts, targets: /targets)")
        print(f"  Alertmanager: {lab.monitoring_url(9093)}/")
        print("  password:     .secrets/lab/monitoring_ops_password")


def monitoring_ok(lab: Lab) -> bool:
    """Prometheus answers the lab's operator login over verified TLS."""
    import base64
    import ssl
    import urllib.request

    try:
        user, password = lab.monitoring_login()
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(f"{lab.monitoring_url(9090)}/-/healthy", headers={"Authorization": f"Basic {token}"})
        context = ssl.create_default_context(cafile=lab.ca_file)
        with urllib.request.urlopen(request, timeout=3, context=context) as r:
            return r.status == 200
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("engine")
    sub.add_parser("images")
    sub.add_parser("env")
    p_up = sub.add_parser("up")
    p_up.add_argument("--inventory", type=Path, default=ROOT / "inventories" / "lab")
    sub.add_parser("down")
    p_info = sub.add_parser("info")
    p_info.add_argument("--inventory", type=Path, default=ROOT / "inventories" / "lab")
    args = ap.parse_args()

    if args.cmd == "engine":
        ensure_engine()
    elif args.cmd == "images":
        ensure_engine()
        tags = image_tags(build=True)
        save_archives(tags, LAB_ARCHIVES)
        log(f"images ready; tags in {write_env(tags)}")
    elif args.cmd == "env":
        for name, tag in image_tags(build=False).items():
            print(f"export {env_name(name)}={tag}")
    elif args.cmd == "up":
        ensure_engine()
        up(args.inventory)
    elif args.cmd == "down":
        down()
    elif args.cmd == "info":
        info(args.inventory)


if __name__ == "__main__":
    main()
