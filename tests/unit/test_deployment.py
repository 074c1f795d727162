"""The deployment files in docker/: what can be checked without a container engine or a cluster.

- Kubernetes manifests: validated against Kubernetes' own JSON schemas (``kubernetes-validate``
  bundles them, so this works offline), strictly (an unknown or misspelt field fails), and
  checked against the server: probe paths, the grace period against the drain, the HPA's
  metric against what ``/metrics`` exports.
- HAProxy: ``haproxy -c`` on docker/haproxy.cfg as shipped (the scale-out tests run it).
- Compose and the Dockerfiles: read as data and checked for what the image must have.
  Nothing here builds or runs an image (no container engine on CI machines).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from whisper_live.server import Server
from whisper_live.settings import ServerSettings

DOCKER = Path(__file__).resolve().parents[2] / "docker"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests are meant for


def manifests() -> dict[str, dict]:
    found = {}
    for path in sorted((DOCKER / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"]] = doc
    return found


def test_manifests_are_valid_kubernetes_objects():
    objects = manifests()
    assert set(objects) == {
        "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap"
    }  # fmt: skip
    for obj in objects.values():
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)  # raises with the path of the error
    broken = yaml.safe_load((DOCKER / "k8s" / "deployment.yaml").read_text())
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_probes_grace_period_and_autoscaling_fit_the_server():
    objects = manifests()
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"  # 503 when full or draining
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["failureThreshold"] == 1  # out of rotation at the first 503
    # SIGTERM drains within the shutdown timeout, after preStop; Kubernetes must not kill it earlier.
    drain = float(env["WHISPER_LIVE_SHUTDOWN_TIMEOUT"])
    pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + 5
    assert pod["securityContext"]["runAsNonRoot"]
    # The HPA's metric is one the server exports, and the adapter's rule names it.
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    metric = hpa["metrics"][0]["pods"]["metric"]["name"]
    server = Server(ServerSettings(preload=False))  # its /metrics, as a scrape renders it
    try:
        body, _ = server.metrics.render()
    finally:
        server.pool.close()
    assert f"# TYPE {metric} gauge" in body.decode()
    assert metric in objects["ConfigMap"]["data"]["config.yaml"]
    per_replica = float(hpa["metrics"][0]["pods"]["target"]["averageValue"])
    assert 0 < per_replica < float(env["WHISPER_LIVE_MAX_CLIENTS"])  # scale before replicas fill
    assert objects["Service"]["spec"]["sessionAffinity"] == "None"  # sticky nothing
    assert objects["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


@pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="haproxy not installed (scripts/install-system-deps.sh)"
)
def test_haproxy_accepts_the_config_as_shipped():
    check = subprocess.run(
        ["haproxy", "-c", "-f", str(DOCKER / "haproxy.cfg")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_compose_runs_replicas_behind_the_balancer():
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())["services"]
    replica, balancer = compose["whisper-live"], compose["haproxy"]
    assert replica["deploy"]["replicas"] >= 2 and "ports" not in replica  # only the balancer is published
    drain = float(replica["environment"]["WHISPER_LIVE_SHUTDOWN_TIMEOUT"])
    assert float(replica["stop_grace_period"].rstrip("s")) > drain
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in balancer["volumes"]
    config = (DOCKER / "haproxy.cfg").read_text()
    assert "whisper-live:8001" in config and "whisper-live:9090" in config  # the service's DNS name
    assert {"8001:8001", "9090:9090"} <= set(balancer["ports"])


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_images_are_built_for_production(name):
    lines = [line.strip() for line in (DOCKER / name).read_text().splitlines()]
    text = "\n".join(lines)
    runs = [i for i, line in enumerate(lines) if line.startswith("RUN")]
    requirements = next(i for i in runs if "requirements.txt" in lines[i] and "pip install" in text)
    wheel_copy = lines.index("COPY --from=wheel /wheels /wheels")
    assert requirements < wheel_copy  # dependencies in a layer of their own, before the code
    assert (
        "pip install --no-cache-dir --no-deps /wheels/*.whl" in text
        or "pip install --no-deps /wheels/*.whl" in text
    )
    assert " -e " not in text  # not editable
    user = next(line for line in lines if line.startswith("USER"))
    assert user.split()[1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") for line in lines) and "/health" in text
    assert "VOLUME /models" in lines
    instructions = [line.lower() for line in lines if line and not line.startswith("#")]
    assert not any("ffmpeg" in line or "libav" in line for line in instructions)  # PyAV bundles FFmpeg
    if name == "Dockerfile.cuda":
        base = next(line for line in lines if line.startswith("FROM nvidia/cuda:"))
        assert ":12." in base and "cudnn9" in base  # faster-whisper on GPU: CUDA 12 + cuDNN 9
        assert "WHISPER_LIVE_DEVICE=cuda" in text
