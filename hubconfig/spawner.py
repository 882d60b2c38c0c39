"""Where and how users' servers run: Swarm, Docker, Kubernetes or local.

Shared by every backend: the image allow-list (only images named in the
config, never any pullable one), profiles picked on the spawn form (image,
CPU, memory, environment), the notebook uid, names that keep two hub
deployments apart, and timeouts tuned for fast spawns.
"""

from __future__ import annotations

import html
from typing import Any

from tornado import web

from hubconfig import environment, names

CLASSES = {
    "swarm": "hubconfig.swarmspawner.TwinhubSwarmSpawner",
    "docker": "dockerspawner.DockerSpawner",
    "kube": "kubespawner.KubeSpawner",
    "local": "jupyterhub.spawner.SimpleLocalProcessSpawner",
}


def default_profile(sp: dict[str, Any]) -> str:
    return sp["default_profile"] or next(iter(sp["profiles"]))


def options_form(sp: dict[str, Any]) -> str:
    """The spawn form: one radio button per profile."""
    default = default_profile(sp)
    rows = []
    for slug, p in sp["profiles"].items():
        checked = " checked" if slug == default else ""
        label = html.escape(p["display_name"])
        detail = html.escape(f"{describe(p)}. {p['description']}".strip())
        rows.append(
            f'<div class="radio"><label><input type="radio" name="profile" value="{html.escape(slug)}"{checked}>'
            f" <strong>{label}</strong> <small>{detail}</small></label></div>"
        )
    return "\n".join(rows)


def describe(profile: dict[str, Any]) -> str:
    """What a profile gives, as the spawn form says it."""
    if profile["kind"] == "slurm":
        return (
            f"{profile['cpu_limit']:g} cores, {profile['mem_limit']} memory, {profile['time_limit']}"
            f" on cluster {profile['cluster']} (partition {profile['partition']})"
        )
    return f"{profile['cpu_limit']:g} CPU, {profile['mem_limit']} memory"


def has_slurm(sp: dict[str, Any]) -> bool:
    return any(p["kind"] == "slurm" for p in sp["profiles"].values())


def options_from_form(formdata: dict[str, list[str]]) -> dict[str, str]:
    return {"profile": formdata.get("profile", [""])[0]}


def resources(profile: dict[str, Any]) -> dict[str, Any]:
    """A profile's Spawner limits and the reservations it asks for (none asked: left out)."""
    out = {"cpu_limit": float(profile["cpu_limit"]), "mem_limit": profile["mem_limit"]}
    if profile["cpu_guarantee"]:
        out["cpu_guarantee"] = float(profile["cpu_guarantee"])
    if profile["mem_guarantee"]:
        out["mem_guarantee"] = profile["mem_guarantee"]
    return out


def profile_applier(sp: dict[str, Any]):
    """Spawner.apply_user_options: a profile name in, spawner settings out.

    user_options can come straight from the REST API: anything that is not
    a known profile is refused with a 400 that lists the allowed ones.
    """
    profiles, images = sp["profiles"], sp["images"]

    def apply_user_options(spawner: Any, user_options: dict[str, Any]) -> None:
        slug = (user_options or {}).get("profile") or default_profile(sp)
        if set(user_options or {}) - {"profile"}:
            raise web.HTTPError(400, f"unknown spawn options {sorted(set(user_options) - {'profile'})}; only 'profile'")
        if slug not in profiles:
            raise web.HTTPError(400, f"profile {slug!r} is not allowed; choose one of {sorted(profiles)}")
        profile = profiles[slug]
        # One form for containers and Slurm jobs: the profile spawner makes
        # the spawner of the profile's kind, which gets the settings.
        if hasattr(spawner, "use"):
            spawner = spawner.use(profile["kind"])
        if profile["kind"] == "slurm":
            _slurm_job(spawner, profile)
        else:
            spawner.image = images[profile["image"]]
            for name, value in {"cpu_guarantee": None, "mem_guarantee": None, **resources(profile)}.items():
                setattr(spawner, name, value)
        spawner.environment = {**spawner.environment, **profile["environment"], "TWINHUB_PROFILE": slug}

    return apply_user_options


def _slurm_job(spawner: Any, profile: dict[str, Any]) -> None:
    """A Slurm profile's job: cluster, partition, cores, memory, time, modules."""
    from hubconfig.schema import slurm_minutes

    spawner.cluster = profile["cluster"]
    spawner.partition = profile["partition"]
    spawner.cpu_limit = float(profile["cpu_limit"])
    spawner.mem_limit = profile["mem_limit"]
    spawner.time_minutes = slurm_minutes(profile["time_limit"])
    spawner.modules = list(profile["modules"])


def user_dir_name(spawner: Any) -> str:
    """Spawner.environment value: the user's name escaped (hubconfig.names)."""
    return names.escape(spawner.user.name)


def apply(c: Any, cfg: dict[str, Any]) -> None:
    sp = cfg["spawner"]
    kind = sp["type"]
    c.JupyterHub.spawner_class = CLASSES[kind]
    if kind == "swarm" and sp["swarm_spawner"] == "upstream":
        # Upstream's own class, for comparison: everything below applies to
        # it too, except the twinhub subclass' start_poll.
        c.JupyterHub.spawner_class = "dockerspawner.SwarmSpawner"
    c.Spawner.start_timeout = sp["start_timeout"]
    c.Spawner.http_timeout = sp["http_timeout"]
    c.Spawner.poll_interval = sp["poll_interval"]
    environment.add(c, sp["environment"])
    # A server loads no configuration from the user's home (~/.jupyter,
    # ~/.local/etc/jupyter): otherwise a user could load a server extension
    # into her own server and serve script to whoever visits it. The image's
    # config paths (/etc/jupyter, /opt/notebook/etc/jupyter) are root's.
    c.Spawner.disable_user_config = True
    # The user's name as homes, published/<user> and logs spell it.
    environment.add(c, {"TWINHUB_USER_DIR_NAME": user_dir_name})
    first = sp["profiles"][default_profile(sp)]
    if first["kind"] == "container":
        for name, value in resources(first).items():
            setattr(c.Spawner, name, value)

    if kind == "kube":
        _kube(c, sp)
        return
    c.Spawner.options_form = options_form(sp)
    c.Spawner.options_from_form = options_from_form
    c.Spawner.apply_user_options = profile_applier(sp)
    if kind in ("docker", "swarm"):
        _docker(c, sp, swarm=kind == "swarm")
    if has_slurm(sp):
        _slurm(c, cfg)


def _slurm(c: Any, cfg: dict[str, Any]) -> None:
    """Profiles of kind slurm: the profile spawner in front of the container class and the Slurm one."""
    # Imported now, not when the first job starts: it puts its handler of
    # /hub/api/batchspawner (a job's port report) among the hub API's
    # handlers, which the hub reads once, before any spawn.
    import hubconfig.slurmspawner  # noqa: F401

    sp, slurm = cfg["spawner"], cfg["spawner"]["slurm"]
    c.TwinhubProfileSpawner.container_class = c.JupyterHub.spawner_class
    c.JupyterHub.spawner_class = "hubconfig.profilespawner.TwinhubProfileSpawner"
    s = c.TwinhubSlurmSpawner
    s.clusters = slurm["clusters"]
    s.jupyter_path = slurm["jupyter_path"]
    s.ca_file = slurm["ca_file"]
    s.local_state_dir = cfg["storage"]["local_state_dir"]
    s.start_timeout = slurm["start_timeout"]
    s.http_timeout = sp["http_timeout"]
    # Jobs run outside the containers' network: they reach the hub API where
    # users do (NGINX, which follows the serving hub), not at the relay.
    if slurm["hub_url"]:
        s.hub_connect_url = slurm["hub_url"]
    s.cmd = ["jupyterhub-singleuser"]


def _docker(c: Any, sp: dict[str, Any], swarm: bool) -> None:
    user = f"{sp['notebook_uid']}:{sp['notebook_gid']}"
    # DockerSpawner enforces the allow-list too, should user_options name an image.
    c.DockerSpawner.allowed_images = dict(sp["images"])
    # The default profile's image (the first container profile's if the
    # default is a Slurm job).
    containers = [p for p in sp["profiles"].values() if p["kind"] == "container"]
    default = sp["profiles"][default_profile(sp)]
    image = (default if default["kind"] == "container" else (containers or [None])[0] or {}).get("image")
    c.DockerSpawner.image = sp["images"][image] if image else next(iter(sp["images"].values()))
    # Two independent hubs (staging) on one engine or Swarm never share names:
    # servers are named {prefix}-{username}[--{servername}].
    c.DockerSpawner.prefix = sp["name_prefix"]
    # Under a hub the image runs the single-user server, not its standalone CMD.
    c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
    c.DockerSpawner.network_name = sp["network"]
    c.DockerSpawner.use_internal_ip = True
    # Swarm nodes pull a service's image themselves (from the site registry);
    # pulling it on the hub host too would only cost time and disk.
    c.DockerSpawner.pull_policy = "skip" if swarm else sp["pull_policy"]
    if swarm:
        # No capabilities at all (the server runs as the notebook uid). Swarm
        # services cannot ask for no-new-privileges before Engine 27: the
        # docker role sets it engine-wide on workers (daemon.json).
        c.SwarmSpawner.extra_container_spec = {"user": user, "cap_drop": ["ALL"], "init": True}
        c.SwarmSpawner.extra_placement_spec = {"constraints": list(sp["placement_constraints"])}
        # The service name resolves straight to its one task's address (DNS
        # round robin) instead of a virtual IP: no IPVS hop between the proxy
        # and the server, and it works where IPVS does not (nested engines).
        c.SwarmSpawner.extra_endpoint_spec = {"mode": "dnsrr"}
        c.TwinhubSwarmSpawner.start_poll = float(sp["start_poll"])
        # Swarm has no setting for a service's PIDs limit in dockerspawner:
        # the twinhub class adds it to the service it creates.
        c.TwinhubSwarmSpawner.pids_limit = sp["pids_limit"]
    else:
        c.DockerSpawner.remove = True
        c.DockerSpawner.extra_create_kwargs = {"user": user}
        c.DockerSpawner.extra_host_config = {
            "security_opt": ["no-new-privileges"],
            "cap_drop": ["ALL"],
            "pids_limit": sp["pids_limit"],
        }


def _kube(c: Any, sp: dict[str, Any]) -> None:
    images = sp["images"]
    default = default_profile(sp)
    c.KubeSpawner.profile_list = [
        {
            "display_name": p["display_name"],
            "slug": slug,
            "description": p["description"],
            "default": slug == default,
            "kubespawner_override": {
                "image": images[p["image"]],
                **resources(p),
                "environment": {**p["environment"], "TWINHUB_PROFILE": slug},
            },
        }
        for slug, p in sp["profiles"].items()
    ]
    c.KubeSpawner.image = images[sp["profiles"][default]["image"]]
    # {escaped_username}: hubconfig.names' spelling whatever KubeSpawner's slug scheme.
    c.KubeSpawner.pod_name_template = sp["name_prefix"] + "-{escaped_username}--{servername}"
    c.KubeSpawner.uid = sp["notebook_uid"]
    c.KubeSpawner.gid = sp["notebook_gid"]
    c.KubeSpawner.fs_gid = sp["notebook_gid"]
    c.KubeSpawner.allow_privilege_escalation = False
    c.KubeSpawner.automount_service_account_token = False
    c.KubeSpawner.container_security_context = {
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    c.KubeSpawner.image_pull_policy = {"ifnotpresent": "IfNotPresent", "always": "Always", "never": "Never"}[sp["pull_policy"]]
