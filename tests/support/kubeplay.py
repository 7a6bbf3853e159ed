"""The chart's rendered pod made playable by `podman kube play` (podman 4.3): the manifests as rendered, with
only the pieces podman cannot play translated, each by a named translation (TRANSLATIONS), so that a test
can say which it used. What the translation wrote and what podman will create is in `Playable`."""

from __future__ import annotations

import base64
import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.chart import Manifest, workload

#: The translations, by name: why each is needed and what it does instead.
TRANSLATIONS = {
    "secret-as-files": "a secret volume makes podman panic without `optional`, and mounts the data still "
    "base64-encoded ignoring items and defaultMode with it: its items are decoded into a host directory "
    "(mode defaultMode, group fsGroup, as the kubelet writes them) mounted read-only in its place",
    "subpath-as-file": "subPath is ignored (config.yml would be a directory): the ConfigMap's key is written "
    "to a host file mounted at the mountPath",
    "unique-volume-names": "emptyDir, persistentVolumeClaim and configMap volumes become podman volumes "
    "named after the pod's volume, the claim or the ConfigMap, and those names are global: each gets a "
    "suffix of this test",
    "host-network-port": "the pod shares the host's network to reach the simulator on loopback, and "
    "containerPort cannot be combined with that: ports are dropped and the exporter listens on a free "
    "loopback port instead of :containerPort (the one argument changed)",
    "probes-from-outside": "probes are not run (no systemd) and a named port becomes 0: they are taken out of "
    "the spec and requested by the test at their path, port and scheme",
    "statefulset-as-deployment": "StatefulSet is not supported (and a Pod's annotations are held to label "
    "limits, which the checksum annotations exceed): one pod of it (pod index 1) is played as a Deployment "
    "of one replica of the template, with the pod-index label the StatefulSet controller adds",
}
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
POD_INDEX = "1"


@dataclass
class Playable:
    """What `podman kube play` gets, and what podman creates from it (to be removed by the test)."""

    text: str
    pod: str
    container: str
    volumes: list[str]
    port: int
    used: list[str] = field(default_factory=list)


def _secret_data(secret: Manifest) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def _write(path: Path, content: bytes, mode: int, gid: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)
    if gid is not None and os.geteuid() == 0:
        os.chown(path, 0, gid)


def _secret_as_files(
    volume: dict[str, Any], secrets: dict[str, dict[str, bytes]], directory: Path, gid: int | None
) -> None:
    """The secret volume's items decoded into `directory`, as the kubelet writes them, mounted instead."""
    secret = volume.pop("secret")
    data = secrets[secret["secretName"]]
    mode = int(secret.get("defaultMode", 0o644))
    items = secret.get("items") or [{"key": k, "path": k} for k in data]
    directory.mkdir(parents=True)
    for item in items:
        _write(directory / item["path"], data[item["key"]], int(item.get("mode", mode)), gid)
    volume["hostPath"] = {"path": str(directory), "type": "Directory"}


def translate(
    manifests: list[Manifest],
    *,
    suffix: str,
    port: int,
    files: Path,
    secrets: dict[str, dict[str, bytes]],
) -> Playable:
    """The rendered workload and its ConfigMaps, translated for `podman kube play --network host`.

    `secrets` holds the Secrets the chart refers to but does not render (`existingSecret`s, as an operator
    creates them); `files` is where secret items and subPath files are written; `port` the loopback port.
    """
    used: list[str] = []
    kind_map = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Secret"}
    all_secrets = {name: _secret_data(m) for name, m in kind_map.items()} | secrets
    configmaps = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "ConfigMap"}
    source = copy.deepcopy(workload(manifests))
    template = source["spec"]["template"]
    spec = template["spec"]
    (container,) = spec["containers"]
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    labels = dict(template["metadata"].get("labels") or {})

    if source["kind"] == "StatefulSet":
        used.append("statefulset-as-deployment")
        labels[POD_INDEX_LABEL] = POD_INDEX
        template["metadata"]["labels"] = labels
        source["kind"] = "Deployment"
        source["spec"] = {"replicas": 1, "selector": source["spec"]["selector"], "template": template}
    name = f"{source['metadata']['name']}-{suffix}"
    source["metadata"]["name"] = name
    pod = f"{name}-pod-0"  # how podman names a Deployment's pod

    mounts = container.get("volumeMounts") or []
    volumes: list[str] = []
    for volume in spec.get("volumes") or []:
        if "secret" in volume:
            used.append("secret-as-files")
            _secret_as_files(volume, all_secrets, files / volume["name"], fs_group)
        elif "emptyDir" in volume or "persistentVolumeClaim" in volume:
            used.append("unique-volume-names")
            old, volume["name"] = volume["name"], f"{volume['name']}-{suffix}"
            for mount in mounts:
                if mount["name"] == old:
                    mount["name"] = volume["name"]
            claim = volume.get("persistentVolumeClaim")
            if claim:
                claim["claimName"] = f"{claim['claimName']}-{suffix}"
                volumes.append(claim["claimName"])
            else:
                volumes.append(volume["name"])
    for mount in mounts:
        if "subPath" in mount:
            used.append("subpath-as-file")
            volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
            configmap = configmaps[volume["configMap"]["name"]]
            path = files / f"{mount['name']}-subpath" / mount.pop("subPath")
            _write(path, configmap["data"][path.name].encode(), 0o644, None)
            mount["name"] = f"{mount['name']}-{re.sub('[^a-z0-9-]', '-', path.name)}"
            spec["volumes"].append({"name": mount["name"], "hostPath": {"path": str(path), "type": "File"}})

    if container.pop("ports", None) is not None:
        used.append("host-network-port")
        args = container["args"]
        (listen,) = [i for i, a in enumerate(args) if a.startswith("--web.listen-address=:")]
        args[listen] = f"--web.listen-address=127.0.0.1:{port}"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if container.pop(probe, None) is not None and "probes-from-outside" not in used:
            used.append("probes-from-outside")

    mounted = {mount["name"] for mount in mounts}
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] in mounted]
    wanted = {v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v}
    documents = [copy.deepcopy(m) for name, m in configmaps.items() if name in wanted]
    for document in documents:
        document["metadata"].pop("namespace", None)
        document["metadata"]["name"] += f"-{suffix}"
        volumes.append(document["metadata"]["name"])
    for volume in spec["volumes"]:
        if "configMap" in volume:
            used.append("unique-volume-names")
            volume["configMap"]["name"] += f"-{suffix}"
    source["metadata"].pop("namespace", None)
    return Playable(
        text=yaml.safe_dump_all([*documents, source], sort_keys=False),
        pod=pod,
        container=f"{pod}-{container['name']}",
        volumes=volumes,
        port=port,
        used=list(dict.fromkeys(used)),
    )
