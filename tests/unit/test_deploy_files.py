"""deploy/: the Kubernetes manifests validate against a pinned Kubernetes API (offline schemas shipped
by kubernetes-validate), and the compose file, Dockerfile and nginx config have the promised shape."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.31.0"  # schemas shipped inside the kubernetes-validate wheel: no network
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


def documents() -> list[tuple[str, dict]]:
    out = []
    for path in MANIFESTS:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                out.append((f"{path.name}#{i}", doc))
    return out


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in documents() if d["kind"] == kind}


@pytest.mark.parametrize(("where", "doc"), documents(), ids=[w for w, _ in documents()])
def test_each_manifest_is_valid_for_the_pinned_kubernetes_version(where, doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validation_would_catch_a_mistake():
    doc = by_kind("Deployment")["datafair-api"]
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_every_required_kind_is_there():
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in documents()}
    assert {("Deployment", "datafair-api"), ("Deployment", "datafair-worker"), ("Deployment", "datafair-beat"),
            ("Service", "datafair-api"), ("Ingress", "datafair"), ("HorizontalPodAutoscaler", "datafair-api"),
            ("PodDisruptionBudget", "datafair-api"), ("ConfigMap", "datafair-config"),
            ("Secret", "datafair-secrets"), ("Job", "datafair-migrate")} <= kinds
    assert any(kind == "NetworkPolicy" for kind, _ in kinds)


def test_pods_run_as_non_root_read_only_and_probe_readiness():
    pods = {**{n: d["spec"]["template"]["spec"] for n, d in by_kind("Deployment").items()},
            **{n: d["spec"]["template"]["spec"] for n, d in by_kind("Job").items()}}
    for name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in pod["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert c["resources"]["requests"], name
            assert {"configMapRef": {"name": "datafair-config"}} in c["envFrom"], name
            assert {"secretRef": {"name": "datafair-secrets"}} in c["envFrom"], name
    api = pods["datafair-api"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/api/v1/health/live"
    beat = by_kind("Deployment")["datafair-beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"


def test_the_connection_budget_fits_postgres_max_connections():
    config = by_kind("ConfigMap")["datafair-config"]["data"]
    per_process = int(config["DATAFAIR_DB_POOL_SIZE"]) + int(config["DATAFAIR_DB_MAX_OVERFLOW"])
    api_pods = by_kind("HorizontalPodAutoscaler")["datafair-api"]["spec"]["maxReplicas"]
    worker = by_kind("Deployment")["datafair-worker"]
    concurrency = int(re.search(r"--concurrency=(\d+)", " ".join(
        worker["spec"]["template"]["spec"]["containers"][0]["command"])).group(1))
    total = (api_pods * int(config["DATAFAIR_WORKERS"]) + worker["spec"]["replicas"] * concurrency) * per_process
    assert total <= 90, f"{total} connections at the HPA's maximum leaves no room under max_connections=100"


def test_the_secret_template_holds_placeholders_only():
    secret = by_kind("Secret")["datafair-secrets"]["stringData"]
    assert "REPLACE" in secret["DATAFAIR_SECRET_KEY"]
    assert all(not v or "REPLACE" in v or v.startswith("redis://redis") for v in secret.values())
    env_example = (DEPLOY / ".env.example").read_text()
    assert "DATAFAIR_SECRET_KEY=replace-with" in env_example
    assert not re.search(r"(sk_live|sk_test|whsec)_[A-Za-z0-9]{8,}", env_example)


def test_metrics_are_not_routed_publicly():
    ingress = by_kind("Ingress")["datafair"]
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert "/" not in paths and not any(p.startswith("/metrics") for p in paths)
    assert "location = /metrics { return 404; }" in (DEPLOY / "nginx.conf").read_text()


def test_compose_has_the_promised_services():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "api1", "api2", "worker", "beat", "nginx"} <= set(services)
    for api in ("api1", "api2"):
        assert "gunicorn" in services[api]["command"]
        assert services[api]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[api]["environment"]["REDIS_URL"].startswith("redis://redis")
    assert services["worker"]["command"][:4] == ["celery", "-A", "app:celery", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "app:celery", "beat"]
    assert services["migrate"]["command"] == ["flask", "--app", "app", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]
    assert "max_connections=100" in services["postgres"]["command"]
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server api1:8000" in nginx and "server api2:8000" in nginx


def test_the_dockerfile_is_multi_stage_non_root_with_a_readiness_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.M)
    assert [s for _, s in stages] == ["build", "runtime"] and all(i == "python:3.11-slim" for i, _ in stages)
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001", runtime, re.M)
    assert "HEALTHCHECK" in runtime and "/api/v1/health/ready" in runtime
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert "gcc" not in runtime and "build-essential" not in runtime


def nginx_locations() -> dict[str, list[str]]:
    """nginx.conf's `location` blocks: their match (`= /metrics`, `^~ /gateway/`, ...) -> directives."""
    text = re.sub(r"#[^\n]*", "", (DEPLOY / "nginx.conf").read_text())
    out = {}
    for m in re.finditer(r"location\s+([^{]+?)\s*\{([^}]*)\}", text):
        out[m.group(1)] = [" ".join(d.split()) for d in m.group(2).split(";") if d.strip()]
    return out


def test_nginx_streams_uploads_downloads_and_gateway_calls_with_their_own_body_limits():
    locations = nginx_locations()
    match, upload = next((k, v) for k, v in locations.items() if k.startswith("~ ") and "/files/" in k)
    pattern = match.split(None, 1)[1]
    assert re.match(pattern, "/api/v1/releases/rel_123/files/od.csv")
    assert not re.match(pattern, "/api/v1/releases/rel_123/publish")
    assert "client_max_body_size 5g" in upload and "proxy_request_buffering off" in upload
    assert "proxy_buffering off" in locations["^~ /api/v1/downloads/"]
    gateway = locations["^~ /gateway/"]
    assert "client_max_body_size 10m" in gateway and "proxy_buffering off" in gateway
    # Everything else keeps the API's own 1 MiB limit.
    assert "client_max_body_size 1m" in re.sub(r"#[^\n]*", "", (DEPLOY / "nginx.conf").read_text())
    assert not any("client_max_body_size" in d for d in locations["/"])


def test_nginx_never_resends_a_gateway_call_that_reached_a_node():
    for match, directives in nginx_locations().items():
        retry = [d for d in directives if d.startswith("proxy_next_upstream ")]
        assert all("non_idempotent" not in d for d in retry), match
        if match == "^~ /gateway/":
            # A relayed 502/503 is the vendor failing after the call was counted: resending calls it twice.
            assert retry and all(not {"http_502", "http_503", "http_504"} & set(d.split()) for d in retry)
    # Every proxy_set_header sits at server level: a location defining one would drop the others
    # (X-Forwarded-For included, which the per-client limits rely on).
    assert not any(d.startswith("proxy_set_header") for ds in nginx_locations().values() for d in ds)
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in (DEPLOY / "nginx.conf").read_text()


def test_gthread_threads_fit_in_each_process_pool():
    config = by_kind("ConfigMap")["datafair-config"]["data"]
    threads = int(config["DATAFAIR_THREADS"])
    assert threads > 1, "sync workers hold a whole process per in-flight gateway call"
    # One connection per thread at a time: fewer in the pool and a thread waits for another's to come back.
    assert int(config["DATAFAIR_DB_POOL_SIZE"]) + int(config["DATAFAIR_DB_MAX_OVERFLOW"]) >= threads


def test_gunicorn_defaults_to_gthread_workers(monkeypatch):
    monkeypatch.delenv("DATAFAIR_THREADS", raising=False)
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert (settings["worker_class"], settings["threads"]) == ("gthread", 4)
    monkeypatch.setenv("DATAFAIR_THREADS", "1")
    assert runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))["worker_class"] == "sync"


def test_the_gateway_is_routed_with_its_own_limits_and_no_resend():
    gateway = by_kind("Ingress")["datafair-gateway"]
    paths = [p["path"] for rule in gateway["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/gateway"]
    notes = gateway["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "10m"
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert "http_502" not in notes["nginx.ingress.kubernetes.io/proxy-next-upstream"]
