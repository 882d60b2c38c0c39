"""The hub process itself: URLs, database, secrets, server lifecycle."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url

from hubconfig.secrets import export_env, read_secret, secret_path


def db_url(cfg: dict[str, Any]) -> str:
    """The SQLAlchemy URL: psycopg 3 driver, password from its secret file."""
    url = make_url(cfg["hub"]["db_url"])
    if url.drivername.startswith("postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    password_file = cfg["hub"]["db_password_file"]
    if password_file:
        url = url.set(password=read_secret(password_file, "hub.db_password_file"))
    return url.render_as_string(hide_password=False)


def apply(c: Any, cfg: dict[str, Any]) -> None:
    hub = cfg["hub"]
    c.JupyterHub.base_url = hub["base_url"]
    c.JupyterHub.bind_url = hub["bind_url"]
    c.JupyterHub.hub_bind_url = hub["hub_bind_url"]
    if hub["hub_connect_url"]:
        # The proxy and the hub's own services reach this hub here.
        c.JupyterHub.hub_connect_url = hub["hub_connect_url"]
    if hub["servers_connect_url"]:
        # Users' servers reach the hub API here: in a hub pair an address that
        # follows the active hub (the relay), never one hub host's own, so a
        # failover does not strand running servers.
        c.Spawner.hub_connect_url = hub["servers_connect_url"]
    c.JupyterHub.db_url = db_url(cfg)
    if c.JupyterHub.db_url.startswith("postgresql"):
        # The same TCP timeouts and keepalives (both ways) as the leader
        # lock's session: a cut or frozen hub's sessions end in seconds, and
        # a stalled link fails a statement instead of hanging for minutes.
        from hubconfig.leader import LeaderSettings, session_options

        c.JupyterHub.db_kwargs = {"connect_args": session_options(LeaderSettings(db_url=""))}
    if hub["subdomain_host"]:
        # One origin per user: each server on <name>.<hub host>, the name
        # spelled as everywhere else (hubconfig.names: a DNS label); the
        # hub's cookies are __Host- cookies on its own host only, so no
        # user's server ever receives them. The hub's public URL follows.
        c.JupyterHub.subdomain_host = hub["subdomain_host"]
        c.JupyterHub.subdomain_hook = subdomain
        c.JupyterHub.cookie_host_prefix_enabled = True
    # Servers keep running when the hub stops: the next hub (after a restart,
    # a failover or a switch) adopts them.
    c.JupyterHub.cleanup_servers = hub["cleanup_servers"]
    # A hub taking over serves only once it knows which servers run (routes
    # added): users' requests wait at NGINX meanwhile instead of reaching a
    # hub that thinks their server is gone. Upstream's 10 s is shorter than
    # a Swarm leader election after a lost manager.
    c.JupyterHub.init_spawners_timeout = 60
    # A proxy this hub starts (in its container) stops with it. An external
    # proxy outlives the hub: a hub host's own (twinhub-chp, the hub role)
    # or the chart's proxy pod keeps its routes, so requests and websockets
    # to users' servers go on while the hub restarts or fails over.
    c.JupyterHub.cleanup_proxy = not hub["proxy_external"]

    # Shared by both hubs of a pair, generated once by Ansible or Helm.
    c.JupyterHub.cookie_secret_file = str(secret_path(cfg, "cookie_secret"))
    read_secret(secret_path(cfg, "cookie_secret"), "hub.secrets_dir/cookie_secret")
    export_env("JUPYTERHUB_CRYPT_KEY", read_secret(secret_path(cfg, "crypt_key"), "hub.secrets_dir/crypt_key"))
    c.ConfigurableHTTPProxy.auth_token = read_secret(secret_path(cfg, "proxy_token"), "hub.secrets_dir/proxy_token")
    c.ConfigurableHTTPProxy.api_url = hub["proxy_api_url"]
    c.ConfigurableHTTPProxy.should_start = not hub["proxy_external"]
    if hub["proxy_external"]:
        # A proxy container that restarts comes back at a new address under
        # the same name: the hub's HTTP client must ask again (aiohttp's own
        # DNS cache would keep the old address 10 s; the hub image leaves
        # out aiodns, whose c-ares cache kept it for 600 s).
        c.JupyterHubHTTPClient.connector_options = {"use_dns_cache": False}
    if hub["proxy_peer_api_urls"]:
        # A hub pair: every hub host's proxy gets the serving hub's routes.
        c.JupyterHub.proxy_class = "hubconfig.proxy.PairProxy"
        c.PairProxy.peer_api_urls = list(hub["proxy_peer_api_urls"])
    if not hub["proxy_external"]:
        # JupyterHub starts its proxy before the hub listens and adds the
        # hub's route after: meanwhile the proxy would answer 404 to
        # everything. Routed to the hub from the start, such a request gets
        # a 503 (the hub is not up yet), which NGINX holds and retries.
        port = make_url_port(hub["hub_bind_url"])
        target = hub["hub_connect_url"] or f"http://127.0.0.1:{port}"
        c.ConfigurableHTTPProxy.command = ["configurable-http-proxy", "--default-target", target]
    # Offboarding: a login lasts cookie_max_age_days (the servers' OAuth
    # tokens follow it) and no API token a user asks for outlives
    # token_max_age, so a leaver's credentials run out on their own.
    c.JupyterHub.cookie_max_age_days = float(hub["cookie_max_age_days"])
    c.JupyterHub.token_expires_in_max_seconds = int(hub["token_max_age"])
    # JupyterHub re-checks the proxy's routes with each activity update: an
    # external proxy that restarted empty gets its routes back this often.
    c.JupyterHub.last_activity_interval = hub["route_check_interval"]


def subdomain(name: str, domain: str, kind: str) -> str:
    """JupyterHub's subdomain_hook: <name escaped>.<the hub's domain> for users and services."""
    from hubconfig import names

    return f"{names.escape(name)}.{domain}"


def make_url_port(url: str) -> int:
    """The port of an http(s) URL (80/443 when it has none)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return parsed.port or (443 if parsed.scheme == "https" else 80)
