"""The Helm chart, rendered by Helm's own Go SDK (helm-python-sdk) and
validated for real: `helm lint --strict`, every manifest against the
Kubernetes schemas, yamllint, properties of the objects, the user pod built
by a real KubeSpawner configured by hubconfig from the rendered config, and
bad values refused by values.schema.json.

No cluster here: the install test runs where a kubeconfig and helm exist.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helm_python import Chart, HelmValuesError, lint
from support import ROOT
from traitlets.config import Config
from yamllint import config as yamllint_config
from yamllint import linter

CHART = ROOT / "charts" / "twinhub"
KUBE_VERSION = "1.33.0"  # the Kubernetes schemas the manifests must satisfy
CASES = sorted(p.stem.removesuffix("-values") for p in (CHART / "ci").glob("*-values.yaml"))


def values(case: str) -> dict:
    return yaml.safe_load((CHART / "ci" / f"{case}-values.yaml").read_text())


def render_text(vals: dict, name: str = "twinhub", namespace: str = "jupyter") -> dict[str, str]:
    """template path -> manifest text, as `helm template` would print it."""
    return Chart.load(CHART).render(vals, name=name, namespace=namespace, is_install=True)


def render(vals: dict, name: str = "twinhub", namespace: str = "jupyter") -> list[dict]:
    docs = []
    for _, text in sorted(render_text(vals, name, namespace).items()):
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


@pytest.fixture(scope="module", params=CASES)
def case(request) -> tuple[str, list[dict]]:
    return request.param, render(values(request.param))


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    ]


def test_cases_cover_the_matrix():
    assert set(CASES) >= {"minimal", "oidc", "production", "staging"}


@pytest.mark.parametrize("name", CASES)
def test_helm_lint_strict_is_clean(name):
    report = lint(str(CHART), values(name), strict=True, namespace="jupyter", kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems, report
    assert not report["errors"], report


def test_manifests_valid_for_kubernetes(case):
    _, docs = case
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com"):
            continue  # a CRD (Prometheus operator): no schema in Kubernetes itself
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("name", CASES)
def test_rendered_output_is_clean_yaml(name):
    conf = yamllint_config.YamlLintConfig(
        "extends: default\nrules: {line-length: {max: 200}, document-start: disable, indentation: {indent-sequences: whatever}}"
    )
    # The stream `helm template` prints: each file after its Source line.
    stream = "".join(f"---\n# Source: {path}\n{text.strip()}\n" for path, text in sorted(render_text(values(name)).items()))
    problems = [f"{p.line}: {p.desc}" for p in linter.run(stream, conf) if p.level == "error"]
    assert not problems, problems[:10]


def test_every_container_is_limited_and_locked_down(case):
    _, docs = case
    for where, spec in pod_specs(docs):
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, where
        for c in spec.get("initContainers", []) + spec["containers"]:
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["limits"]), (where, c["name"])
            assert {"cpu", "memory"} <= set(res["requests"]), (where, c["name"])
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (where, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (where, c["name"])
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", (where, c["name"])
            assert sc["readOnlyRootFilesystem"] is True, (where, c["name"])
        if not where.endswith("-hub"):
            assert spec.get("automountServiceAccountToken") is False, where


def test_two_hub_replicas_share_one_lock(case):
    _, docs = case
    hub = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-hub"))
    assert hub["spec"]["replicas"] == 2
    env = {e["name"]: e.get("value") for e in hub["spec"]["template"]["spec"]["containers"][0]["env"]}
    config = yaml.safe_load(next(d for d in by_kind(docs, "ConfigMap"))["data"]["platform.yaml"])
    # The lock lives in the hub's own database: every replica points at it.
    assert env["TWINHUB_LEADER_DB_URL"] == config["hub"]["db_url"]
    assert env["TWINHUB_LEADER_DB_PASSWORD_FILE"] == config["hub"]["db_password_file"]
    # Only the lock holder is ready, so only it is behind the Service.
    probe = hub["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/hub/health"
    assert "livenessProbe" not in hub["spec"]["template"]["spec"]["containers"][0], "a waiting standby must not be killed"


def test_network_policies_select_the_right_pods(case):
    _, docs = case
    pols = {d["metadata"]["name"].rsplit("-", 1)[-1]: d for d in by_kind(docs, "NetworkPolicy")}
    assert {"singleuser", "hub", "proxy"} <= set(pols)
    assert pols["singleuser"]["spec"]["podSelector"]["matchLabels"] == {"component": "singleuser-server"}
    egress = pols["singleuser"]["spec"]["egress"]
    open_block = next(r for r in egress if "to" in r and "ipBlock" in r["to"][0])["to"][0]["ipBlock"]
    assert "169.254.169.254/32" in open_block["except"]
    # Users' pods reach the hub on its API port only; nothing reaches the proxy API but the hub.
    assert egress[0]["ports"] == [{"port": 8081}]
    api_rule = next(r for r in pols["proxy"]["spec"]["ingress"] if r.get("ports") == [{"port": 8001}])
    assert api_rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "hub"
    components = {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] for d in by_kind(docs, "Deployment")}
    for name in ("hub", "proxy"):
        assert pols[name]["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] in components


def test_generated_secrets_are_random_and_complete(case):
    name, docs = case
    secret = next((d for d in by_kind(docs, "Secret") if d["metadata"]["name"].endswith("-hub-secrets")), None)
    assert secret is not None
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(data) == {"cookie_secret", "crypt_key", "proxy_token", "prometheus_token", "nbviewer_token"}
    assert all(len(v) >= 32 for v in data.values()), "empty or short secret"
    assert len(data["cookie_secret"]) == 64
    assert int(data["cookie_secret"], 16) >= 0  # hex
    again = next(d for d in by_kind(render(values(name)), "Secret") if d["metadata"]["name"].endswith("-hub-secrets"))
    assert again["data"]["cookie_secret"] != secret["data"]["cookie_secret"], "not random"
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_staging_is_a_canary_of_the_same_host():
    docs = render(values("staging"), name="twinhub-staging", namespace="jupyter-staging")
    ing = next(d for d in by_kind(docs, "Ingress"))
    ann = ing["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/canary"] == "true"
    assert ann["nginx.ingress.kubernetes.io/canary-by-header"] == "X-Twinhub-Staging"
    assert ann["nginx.ingress.kubernetes.io/canary-by-cookie"] == "twinhub-staging"
    assert ing["spec"]["rules"][0]["host"] == "jupyter.example.org"
    # Its own database, not production's.
    config = yaml.safe_load(next(d for d in by_kind(docs, "ConfigMap"))["data"]["platform.yaml"])
    assert config["hub"]["db_url"] == "postgresql://jupyterhub@twinhub-staging-db:5432/jupyterhub"
    assert by_kind(docs, "StatefulSet")


def test_nbviewer_on_its_own_host_read_only():
    docs = render(values("production"))
    hosts = {d["metadata"]["name"]: d["spec"]["rules"][0]["host"] for d in by_kind(docs, "Ingress")}
    assert hosts == {"twinhub-hub": "jupyter.example.org", "twinhub-nbviewer": "nbviewer.example.org"}
    nbv = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "twinhub-nbviewer")
    mount = next(m for m in nbv["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] if m["name"] == "shared")
    assert mount["readOnly"] is True
    assert mount["subPath"] == "published"


# -------------------------------------------------- the user's pod, for real
def hub_config_from(docs: list[dict], tmp_path: Path) -> Config:
    """hubconfig reads the chart's rendered platform config, with its secret files."""
    import hubconfig

    config = yaml.safe_load(next(d for d in by_kind(docs, "ConfigMap"))["data"]["platform.yaml"])
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in (
        "cookie_secret",
        "crypt_key",
        "proxy_token",
        "prometheus_token",
        "nbviewer_token",
        "db_password",
        "oidc_client_secret",
    ):
        (secrets / name).write_text("ab" * 32 + "\n")
        (secrets / name).chmod(0o600)
    text = yaml.safe_dump(config).replace("/etc/twinhub/secrets", str(secrets))
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    c = Config()
    hubconfig.configure(c, path)
    return c


def test_one_origin_per_user_by_default(tmp_path):
    docs = render(values("production"))
    ing = next(d for d in by_kind(docs, "Ingress") if d["metadata"]["name"] == "twinhub-hub")
    assert [r["host"] for r in ing["spec"]["rules"]] == ["jupyter.example.org", "*.jupyter.example.org"]
    assert ing["spec"]["tls"][0]["hosts"] == ["jupyter.example.org", "*.jupyter.example.org"]
    c = hub_config_from(docs, tmp_path)
    assert c.JupyterHub.subdomain_host == "https://jupyter.example.org"
    assert c.JupyterHub.subdomain_hook("john.doe", "jupyter.example.org", "user") == "john-2edoe.jupyter.example.org"


def test_single_origin_in_production_needs_the_acknowledgement(tmp_path):
    vals = values("production")
    vals["ingress"]["userSubdomains"] = False
    docs = render(vals)
    ing = next(d for d in by_kind(docs, "Ingress") if d["metadata"]["name"] == "twinhub-hub")
    assert [r["host"] for r in ing["spec"]["rules"]] == ["jupyter.example.org"]
    (tmp_path / "refused").mkdir()
    with pytest.raises(SystemExit):
        hub_config_from(docs, tmp_path / "refused")
    vals["platform"].setdefault("hub", {})["single_origin_acknowledged"] = True
    c = hub_config_from(render(vals), tmp_path)
    assert "subdomain_host" not in c.JupyterHub


def test_pam_is_refused_on_kubernetes():
    # The hub pod has no sssd to ask (the Ansible variant mounts the hub host's).
    vals = values("production")
    vals["platform"]["auth"] = {"type": "pam", "allowed_groups": ["jupyter"]}
    with pytest.raises(Exception, match=r"platform.auth.type is .pam.: .*expected ldap or oidc on Kubernetes"):
        render(vals)


@pytest.mark.parametrize(("profile", "cpu", "mem"), [("small", 1, 2 * 1024**3), ("large", 8, 32 * 1024**3)])
def test_kubespawner_pod_from_the_rendered_config(tmp_path, monkeypatch, profile, cpu, mem):
    from kubespawner import KubeSpawner

    # KubeSpawner makes its API client at construction; building a pod
    # manifest never calls it. A kubeconfig for a loopback address that is
    # never contacted satisfies the constructor.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1", "kind": "Config", "current-context": "t",
                "clusters": [{"name": "t", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "t", "user": {"token": "unused"}}],
                "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": "jupyter"}}],
            }
        )
    )  # fmt: skip
    import kubernetes_asyncio.config.kube_config as kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    c = hub_config_from(render(values("production")), tmp_path)

    class User:
        name = "ada"
        id = 7
        url = "/user/ada/"
        escaped_name = "ada"

    async def build():
        spawner = KubeSpawner(config=c, _mock=True, user=User())
        spawner.user_options = {"profile": profile}
        await spawner.load_user_options()
        from kubernetes_asyncio.client import ApiClient

        return ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())

    pod = asyncio.run(build())
    spec = pod["spec"]
    container = spec["containers"][0]
    images = values("production")["platform"]["spawner"]["images"]
    assert container["image"] == (images["notebook"] if profile == "small" else images["gpu"])
    assert container["resources"]["limits"] == {"cpu": float(cpu), "memory": mem}
    assert spec["securityContext"]["fsGroup"] == 100
    sc = container["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (1000, 100)
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/home/jovyan"]["subPath"] == "ada"
    assert "/home/jovyan/shared" in mounts
    claims = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v}
    rendered = {d["metadata"]["name"] for d in by_kind(render(values("production")), "PersistentVolumeClaim")}
    assert claims == rendered == {"twinhub-home", "twinhub-shared"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TWINHUB_IPYTHON_HIST_FILE"].startswith("/tmp/")  # SQLite off NFS
    assert env["TWINHUB_PROFILE"] == profile


# ------------------------------------------------------------ bad values
BAD = [
    ("unknown key", {"hub": {"replicas": 2, "replica": 3}}, "replica"),
    ("wrong type", {"hub": {"replicas": "two"}}, "replicas"),
    ("replicas 0", {"hub": {"replicas": 0}}, "replicas"),
    ("NFS without server", {"storage": {"type": "nfs", "nfs": {"server": ""}}}, "server"),
    ("bad platform key", {"platform": {"spawner": {"pull_policy": "sometimes"}}}, "pull_policy"),
    ("chart-managed platform key", {"platform": {"hub": {"db_url": "sqlite://"}}}, "db_url"),
]


def merged(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merged(out.get(k, {}), v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.mark.parametrize(("what", "change", "key"), BAD, ids=[b[0] for b in BAD])
def test_bad_values_are_refused_naming_the_key(what, change, key):
    chart = Chart.load(CHART)
    full = merged(merged(chart.values, values("minimal")), change)
    with pytest.raises(HelmValuesError) as info:
        chart.validate_schema(full)
    assert key in str(info.value), str(info.value)


def test_schema_is_generated_from_hubconfig():
    r = subprocess.run(["python", str(ROOT / "tools" / "chart_schema.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_chart_sets_exactly_the_keys_marked_for_it():
    # hubconfig's schema marks what the chart manages; the values schema
    # leaves those keys out. The chart's template must set each of them
    # (and no unmarked one) whatever values.platform holds.
    from hubconfig.schema import managed_keys

    config = yaml.safe_load(next(d for d in by_kind(render(values("minimal")), "ConfigMap"))["data"]["platform.yaml"])
    platform = merged(Chart.load(CHART).values, values("minimal"))["platform"]

    def leaves(node: dict, prefix: str = "") -> set[str]:
        out = set()
        for key, sub in node.items():
            out |= leaves(sub, f"{prefix}{key}.") if isinstance(sub, dict) and sub else {f"{prefix}{key}"}
        return out

    set_by_chart = {k for k in leaves(config) if k.split(".")[0] in ("hub", "spawner")} - leaves(platform)
    assert set_by_chart == set(managed_keys("chart"))
    schema = json.loads((CHART / "values.schema.json").read_text())
    hub_values = schema["properties"]["platform"]["properties"]["hub"]["properties"]
    assert not {k.split(".", 1)[1] for k in managed_keys("chart") if k.startswith("hub.")} & set(hub_values)


# ------------------------------------------------- a real cluster, where one is
def test_install_on_a_real_cluster(tmp_path):
    kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
    if not Path(kubeconfig).exists():
        pytest.skip(f"no Kubernetes cluster here (no kubeconfig at {kubeconfig}); run where one is")
    if not shutil.which("helm"):
        pytest.skip("no helm binary on PATH: installing needs it (rendering here uses Helm's SDK)")
    ns = os.environ.get("TWINHUB_TEST_NAMESPACE", "twinhub-test")
    vals = tmp_path / "values.yaml"
    vals.write_text(yaml.safe_dump(values(os.environ.get("TWINHUB_TEST_VALUES", "staging"))))
    r = subprocess.run(
        ["helm", "upgrade", "--install", "twinhub-test", str(CHART), "-n", ns, "--create-namespace", "-f", str(vals),
         "--wait", "--timeout", "10m"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
