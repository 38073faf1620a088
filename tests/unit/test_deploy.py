"""Deployment files: deploy/Dockerfile, .dockerignore, deploy/k8s/*.yaml, checked without a cluster or Docker.

Rules checked here: every manifest is valid Kubernetes (strict schemas from kubernetes-validate,
skipped when it is not installed); the manifests agree with each other (selectors, HPA target,
ports 8080, drain timing; the recordings volume holds the retention cap, a sweep's growth at MAX_CALLS
and the free-space floor); the image runs ``bot serve`` (as the Procfile) as a numeric non-root
user; and no file carries a secret value. What the image holds (the product without its fakes) is
checked in ``test_image.py``.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.image_tree import DOCKERFILE, DOCKERIGNORE, ROOT, dockerfile_instructions

DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))
SECRET_NAMES = (
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_KEY_SID",
    "TWILIO_API_KEY_SECRET",
    "OPENAI_API_KEY",
    "CALLS_TOKEN",
)
OPTIONAL_SECRETS = ("TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET", "CALLS_TOKEN")
K8S_VERSIONS = ("1.30.0", "1.37.0")  # an older supported release and the newest bundled schemas
PRESTOP_MARGIN_S = 10  # time to close sockets and flush logs after the drain ends
CALL_MINUTE_BYTES = 760_000  # recorded per call-minute: caller 480 kB, the bot's speech, events
# What a new ext4 volume leaves an unprivileged writer: 5% reserved for root, and its own metadata.
USABLE_SHARE = 0.9
QUANTITY_UNITS = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}

Doc = dict[str, Any]


def load(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind() -> dict[str, Doc]:
    found: dict[str, Doc] = {}
    for path in MANIFESTS:
        for doc in load(path):
            assert doc["kind"] not in found, f"two {doc['kind']} manifests"
            found[doc["kind"]] = doc
    return found


def container(deployment: Doc) -> Doc:
    containers: list[Doc] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(deployment: Doc) -> dict[str, Doc]:
    return {item["name"]: item for item in container(deployment).get("env", [])}


def port_number(ref: int | str, deployment: Doc) -> int:
    """A probe's or Service's port, named or numbered, as the container port number."""
    if isinstance(ref, int):
        return ref
    named = {p["name"]: p["containerPort"] for p in container(deployment)["ports"] if "name" in p}
    assert ref in named, f"port name {ref!r} is not a container port"
    return int(named[ref])


def test_there_are_the_four_manifests() -> None:
    assert set(by_kind()) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    validator = pytest.importorskip("kubernetes_validate")
    for doc in load(path):
        try:
            validator.validate(doc, version, strict=True)  # strict: unknown fields are errors
        except validator.ValidationError as exc:
            pytest.fail(f"{path.name} ({version}): {exc.message} at {list(exc.path)}")


def test_selectors_match_the_pods() -> None:
    kinds = by_kind()
    deployment = kinds["Deployment"]
    wanted = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert wanted and wanted.items() <= pod_labels.items()
    assert kinds["Service"]["spec"]["selector"] == wanted
    assert kinds["PodDisruptionBudget"]["spec"]["selector"] == {"matchLabels": wanted}


def test_autoscaler_scales_the_deployment_on_active_calls() -> None:
    kinds = by_kind()
    spec = kinds["HorizontalPodAutoscaler"]["spec"]
    assert kinds["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": kinds["Deployment"]["metadata"]["name"],
    }
    [metric] = spec["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "phonebot_active_calls"
    assert metric["pods"]["target"]["type"] == "AverageValue"
    assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]


def test_disruption_budget_keeps_a_pod() -> None:
    pdb = by_kind()["PodDisruptionBudget"]["spec"]
    assert pdb.get("minAvailable", 0) >= 1 or pdb.get("maxUnavailable") == 1


def test_every_port_is_8080() -> None:
    kinds = by_kind()
    deployment = kinds["Deployment"]
    app = container(deployment)
    assert [p["containerPort"] for p in app["ports"]] == [8080]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        check = app[probe]["httpGet"]
        assert check["path"] == path
        assert port_number(check["port"], deployment) == 8080
    [service_port] = kinds["Service"]["spec"]["ports"]
    assert service_port["port"] == 80
    assert port_number(service_port["targetPort"], deployment) == 8080
    assert env_of(deployment)["PORT"]["value"] == "8080"
    assert ("EXPOSE", "8080") in dockerfile_instructions()


def prestop_sleep_s(deployment: Doc) -> int:
    hook = container(deployment)["lifecycle"]["preStop"]
    if "sleep" in hook:  # the kubelet's own sleep action (Kubernetes 1.30+)
        return int(hook["sleep"]["seconds"])
    command = hook["exec"]["command"]
    assert command[0] == "sleep", f"preStop should sleep, not {command}"
    return int(command[1])


def test_grace_period_covers_prestop_and_drain() -> None:
    deployment = by_kind()["Deployment"]
    drain_s = int(env_of(deployment)["DRAIN_TIMEOUT_S"]["value"])
    sleep_s = prestop_sleep_s(deployment)
    assert sleep_s >= 1
    grace_s = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace_s >= drain_s + sleep_s + PRESTOP_MARGIN_S


def test_liveness_outlasts_the_drain() -> None:
    """/healthz answers 503 while draining: liveness must not restart a pod finishing its calls."""
    deployment = by_kind()["Deployment"]
    drain_s = int(env_of(deployment)["DRAIN_TIMEOUT_S"]["value"])
    liveness = container(deployment)["livenessProbe"]
    assert liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3) >= drain_s


def test_secrets_come_from_the_secret() -> None:
    env = env_of(by_kind()["Deployment"])
    for name in SECRET_NAMES:
        assert "value" not in env[name], f"{name} has a literal value"
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "phonebot-secrets", "key": name} | (
            {"optional": True} if name in OPTIONAL_SECRETS else {}
        )


def test_pod_is_locked_down() -> None:
    deployment = by_kind()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    app = container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert app["securityContext"]["readOnlyRootFilesystem"] is True
    assert app["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(app["resources"]) == {"requests", "limits"}


def test_writable_and_config_paths_are_mounted() -> None:
    deployment = by_kind()["Deployment"]
    env = env_of(deployment)
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    recordings = env["RECORDINGS_DIR"]["value"]
    assert {"emptyDir", "ephemeral"} & set(volumes[mounts[recordings]])  # the root filesystem is read-only
    flows = env["FLOWS_PATH"]["value"]
    assert volumes[mounts[flows]]["configMap"]["name"] == "phonebot-flows"


def quantity_bytes(text: str) -> int:
    """A Kubernetes quantity such as ``10Gi`` in bytes."""
    for suffix, factor in QUANTITY_UNITS.items():
        if text.endswith(suffix):
            return int(float(text.removesuffix(suffix)) * factor)
    return int(text)


def test_recordings_fit_their_volume() -> None:
    """Recordings once filled a 2 GiB emptyDir in under half an hour and the pod was evicted: the shipped
    pod keeps them to a sized volume (or ships them to S3) with the retention limits inside its size."""
    deployment = by_kind()["Deployment"]
    env = {name: str(item.get("value", "")) for name, item in env_of(deployment).items()}
    if env.get("RECORDINGS_S3_BUCKET"):
        return  # the bucket keeps them: the volume is only the spool of calls in progress
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    volume = volumes[mounts[env["RECORDINGS_DIR"]]]
    # An emptyDir's sizeLimit is enforced by eviction while the bot sees the node's free space: the
    # free-space floor would never fire. A volume of its own shows the bot its real free space.
    assert "emptyDir" not in volume, "record to a sized volume (ephemeral PVC) or RECORDINGS_S3_BUCKET"
    size = quantity_bytes(
        volume["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
    )
    cap, floor = int(env["RECORDING_MAX_BYTES"]), int(env["RECORDING_MIN_FREE_BYTES"])
    assert cap > 0 and floor > 0 and float(env["RECORDING_MAX_AGE_DAYS"]) > 0
    # Between two sweeps every live call keeps recording: the cap plus that growth at MAX_CALLS, and the
    # floor under it, must fit in what the volume gives us.
    sweep_growth = int(env["MAX_CALLS"]) * CALL_MINUTE_BYTES * float(env["RECORDING_SWEEP_INTERVAL_S"]) / 60
    assert cap + sweep_growth + floor <= size * USABLE_SHARE


def test_image_runs_bot_serve_as_non_root() -> None:
    steps = dockerfile_instructions()
    froms = [args for word, args in steps if word == "FROM"]
    assert froms and all("PYTHON_IMAGE" in f for f in froms)
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in steps
    assert ("ARG", "OFFLINE=false") in steps
    assert any(word == "RUN" and '".[offline]"' in args for word, args in steps)
    user = [args for word, args in steps if word == "USER"][-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid lets runAsNonRoot verify it"
    pod = by_kind()["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    [cmd] = [args for word, args in steps if word == "CMD"]
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert json.loads(cmd) == shlex.split(procfile["web"]) == ["bot", "serve"]


def test_no_secret_is_baked_into_the_image() -> None:
    for word, args in dockerfile_instructions():
        if word in ("ENV", "ARG"):
            for name in (*SECRET_NAMES, "AWS_SECRET_ACCESS_KEY"):
                assert name not in args, f"{word} {name} would ship in the image"


def test_build_context_sends_what_the_image_copies() -> None:
    patterns = DOCKERIGNORE.read_text().splitlines()
    assert patterns[patterns.index("*")] == "*", "the context starts empty and lists what it needs"
    included = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    for word, args in dockerfile_instructions():
        if word == "COPY" and "--from=" not in args:
            *sources, _target = args.split()
            for source in sources:
                assert source.rstrip("/") in included, f"{source} is excluded from the build context"


SECRET_LOOKING = re.compile(
    r"sk-[A-Za-z0-9_-]{16,}"  # OpenAI key
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|\b[0-9a-f]{32}\b"  # Twilio auth token
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    "path",
    [*MANIFESTS, DOCKERFILE, DOCKERIGNORE, DEPLOY / "README.md"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_file_holds_a_secret_value(path: Path) -> None:
    found = SECRET_LOOKING.findall(path.read_text())
    assert not found, f"{path.name} holds what looks like a secret"
    if path.suffix == ".yaml":
        assert all(doc["kind"] != "Secret" for doc in load(path)), "create the Secret out of band"
