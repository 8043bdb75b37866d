"""deploy/kuberay: manifests valid for KubeRay v1.7.0, versions pinned together, entrypoint accepted by our CLI.

The CRD schemas (OpenAPI v3, in ../shared/k8s/kuberay-v1.7.0/, skipped when absent) are turned into JSON Schema
the way the Kubernetes API server reads a structural schema: a field the schema does not declare is an error (the
server would prune it silently: a typo such as `workerGroupSpec` loses the worker groups), int-or-string fields take
both, `nullable` allows null, int32/int64 are range-checked, a required field with a default may be omitted (the
server defaults before it validates), and list-type map/set entries must be unique. CEL rules
(`x-kubernetes-validations`) cannot be evaluated offline, so a manifest that sets a CEL-guarded field is refused
rather than passed unchecked.
"""

from __future__ import annotations

import configparser
import copy
import datetime as dt
import functools
import gzip
import importlib.metadata
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy" / "kuberay"
CRD_DIR = REPO.parent / "shared" / "k8s" / "kuberay-v1.7.0"
CRD_FILES = {"RayJob": "ray.io_rayjobs.yaml.gz", "RayCluster": "ray.io_rayclusters.yaml.gz"}
RAY_API_VERSION = "ray.io/v1"
GPU = "nvidia.com/gpu"
# KubeRay v1.7.0 ray-operator/controllers/ray/utils/constant.go: longer names would be truncated in child objects.
MAX_NAME_LENGTH = {"RayCluster": 53, "RayJob": 47}
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# ---------------------------------------------------------------------------------------------------------------
# OpenAPI v3 (Kubernetes structural schema) -> JSON Schema
# ---------------------------------------------------------------------------------------------------------------

_INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_PLAIN_KEYWORDS = {
    "type", "required", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems",
    "uniqueItems", "minProperties", "maxProperties", "multipleOf", "default",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-validations",
}  # fmt: skip
_DROPPED_ANNOTATIONS = {"description", "example", "title", "x-kubernetes-map-type"}
_HANDLED = {
    "properties", "items", "additionalProperties", "anyOf", "allOf", "oneOf", "not", "nullable", "format",
    "exclusiveMinimum", "exclusiveMaximum", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
}  # fmt: skip
# The part of ObjectMeta a manifest may set (the API server validates metadata itself; the CRD says only `object`).
_OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


def openapi_to_json_schema(node: dict[str, Any], path: str = "#") -> dict[str, Any]:
    """Convert one OpenAPI v3 schema node of a CRD into JSON Schema (2020-12) with Kubernetes' semantics.

    Raises:
        ValueError: on a keyword or format this converter does not know (so a newer CRD fails loudly
            instead of being validated wrongly).
    """
    unknown = set(node) - _PLAIN_KEYWORDS - _DROPPED_ANNOTATIONS - _HANDLED
    if unknown:
        raise ValueError(f"{path}: unsupported OpenAPI keyword(s) {sorted(unknown)}")
    out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in node.items() if k in _PLAIN_KEYWORDS}
    if "properties" in node:
        out["properties"] = {k: openapi_to_json_schema(v, f"{path}/{k}") for k, v in node["properties"].items()}
        # The server applies defaults before validating, so a required field with a default may be left out.
        defaulted = {k for k, v in node["properties"].items() if "default" in v}
        if "required" in out:
            out["required"] = [k for k in out["required"] if k not in defaulted]
    if "items" in node:
        out["items"] = openapi_to_json_schema(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = openapi_to_json_schema(node["additionalProperties"], f"{path}/*")
    elif "additionalProperties" in node:
        out["additionalProperties"] = bool(node["additionalProperties"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in node:
            out[key] = [openapi_to_json_schema(sub, f"{path}/{key}") for sub in node[key]]
    if "not" in node:
        out["not"] = openapi_to_json_schema(node["not"], f"{path}/not")
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(key) is True:  # OpenAPI 3.0: a flag on minimum/maximum
            out[key] = out.pop(bound)
    if "format" in node:
        fmt = node["format"]
        if fmt in _INT_BOUNDS:
            low, high = _INT_BOUNDS[fmt]
            out["minimum"] = max(out.get("minimum", low), low)
            out["maximum"] = min(out.get("maximum", high), high)
        elif fmt == "date-time":
            out["format"] = fmt
        else:
            raise ValueError(f"{path}: unsupported format {fmt!r}")
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    # Structural pruning: an object keeps only declared fields unless it preserves unknown ones.
    if node.get("type") == "object" and "additionalProperties" not in node:
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if node.get("nullable"):
        if "type" not in out:
            return {"anyOf": [{"type": "null"}, out]}
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _list_type(validator: Any, list_type: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """`x-kubernetes-list-type`: entries of a set are unique; entries of a map are unique by their map keys."""
    if not validator.is_type(instance, "array"):
        return
    if list_type == "set":
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                yield ValidationError(f"duplicate entry {item!r} in a list of type set")
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        item_props = schema.get("items", {}).get("properties", {})
        first_seen: dict[tuple[Any, ...], int] = {}
        for i, item in enumerate(instance):
            if not isinstance(item, dict):
                continue
            key = tuple(item.get(k, item_props.get(k, {}).get("default")) for k in keys)
            if key in first_seen:
                named = dict(zip(keys, key, strict=True))
                yield ValidationError(f"entries {first_seen[key]} and {i} have the same key {named} in a list of type map")
            first_seen.setdefault(key, i)


def _cel_rules(validator: Any, rules: list[dict[str, Any]], instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """`x-kubernetes-validations`: CEL cannot be evaluated offline; refuse rather than pass unchecked.

    Transition rules (those reading `oldSelf`) apply only to updates, never to a manifest being created.
    """
    on_create = [r["rule"] for r in rules if "oldSelf" not in r["rule"]]
    if on_create:
        yield ValidationError("field guarded by CEL rules this offline check cannot evaluate: " + "; ".join(on_create))


KubernetesValidator = validators.extend(
    Draft202012Validator, {"x-kubernetes-list-type": _list_type, "x-kubernetes-validations": _cel_rules}
)
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    return not isinstance(value, str) or bool(dt.datetime.fromisoformat(value))


@functools.cache
def crd_validator(kind: str) -> Any:
    """A validator for manifests of `kind` from the KubeRay v1.7.0 CRD (its `v1` version)."""
    crd = yaml.load(gzip.decompress((CRD_DIR / CRD_FILES[kind]).read_bytes()), Loader=_Loader)
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = openapi_to_json_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"]["apiVersion"] = {"const": RAY_API_VERSION}
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["metadata"] = _OBJECT_META
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    return KubernetesValidator(schema, format_checker=_FORMATS)


def schema_errors(doc: dict[str, Any], kind: str) -> list[str]:
    """Every violation of the `kind` CRD schema (RayJob or RayCluster) in a manifest, as `field.path: message`."""
    errors = crd_validator(kind).iter_errors(doc)
    return sorted(f"{_dotted(e.absolute_path)}: {e.message}" for e in errors)


def _dotted(path: Any) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return text.lstrip(".") or "<root>"


# ---------------------------------------------------------------------------------------------------------------
# KubeRay operator-side rules (ray-operator/controllers/ray/utils/validation.go, v1.7.0) the CRD does not encode
# ---------------------------------------------------------------------------------------------------------------


def cluster_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The RayCluster spec of a RayCluster or a RayJob (None for a RayJob that selects an existing cluster)."""
    return doc["spec"].get("rayClusterSpec") if doc["kind"] == "RayJob" else doc["spec"]


def operator_errors(doc: dict[str, Any]) -> list[str]:
    """What the KubeRay operator would reject although the CRD schema accepts it."""
    errors = []
    meta = doc["metadata"]
    name = meta.get("name") or meta.get("generateName", "") + "x" * 5  # the server appends 5 characters
    if len(name) > MAX_NAME_LENGTH[doc["kind"]] or not DNS1035_LABEL.match(name):
        errors.append(f"metadata.name {name!r}: a DNS-1035 label of at most {MAX_NAME_LENGTH[doc['kind']]} characters")
    spec = cluster_spec(doc)
    if spec is None and not doc["spec"].get("clusterSelector"):
        errors.append("spec: one of rayClusterSpec or clusterSelector must be set")
    groups = [] if spec is None else [("head", spec["headGroupSpec"], False)]
    groups += [(f"worker group {g['groupName']}", g, True) for g in (spec or {}).get("workerGroupSpecs", [])]
    for group_name, group, is_worker in groups:
        if not group["template"].get("spec", {}).get("containers"):
            errors.append(f"{group_name}: the pod template needs at least one container")
        start = group.get("rayStartParams", {})
        if group.get("resources") and any(start.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources")):
            errors.append(f"{group_name}: resources set both in rayStartParams and resources")
        if "labels" in start:
            errors.append(f"{group_name}: rayStartParams['labels'] is not supported; use the group's labels")
        low, high = group.get("minReplicas", 0), group.get("maxReplicas", 2**31 - 1)
        if is_worker and not 0 <= low <= high:
            errors.append(f"{group_name}: need 0 <= minReplicas ({low}) <= maxReplicas ({high})")
    if doc["kind"] == "RayJob":
        if doc["spec"].get("ttlSecondsAfterFinished", 0) < 0:
            errors.append("spec.ttlSecondsAfterFinished must be non-negative")
        for key in ("activeDeadlineSeconds", "preRunningDeadlineSeconds"):
            if key in doc["spec"] and doc["spec"][key] <= 0:
                errors.append(f"spec.{key} must be positive")
        if doc["spec"].get("suspend") and not doc["spec"].get("shutdownAfterJobFinishes"):
            errors.append("spec.suspend needs shutdownAfterJobFinishes")
    return errors


# ---------------------------------------------------------------------------------------------------------------
# The manifests
# ---------------------------------------------------------------------------------------------------------------

MANIFEST_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _only(kind: str) -> dict[str, Any]:
    (doc,) = [d for p in MANIFEST_FILES for d in _docs(p) if d.get("kind") == kind]
    return doc


def _pvc_errors(doc: dict[str, Any]) -> list[str]:
    """The shared claim: a core v1 PersistentVolumeClaim (no CRD schema), checked for what our manifests rely on."""
    errors = []
    spec_fields = {"accessModes", "resources", "storageClassName", "volumeMode", "volumeName", "selector"}
    spec_fields |= {"dataSource", "dataSourceRef", "volumeAttributesClassName"}
    if doc.get("apiVersion") != "v1" or set(doc) - {"apiVersion", "kind", "metadata", "spec"}:
        errors.append("expected apiVersion v1 with only apiVersion, kind, metadata, spec")
    if set(doc["spec"]) - spec_fields:
        errors.append(f"unknown spec fields {sorted(set(doc['spec']) - spec_fields)}")
    if doc["spec"].get("accessModes") != ["ReadWriteMany"]:
        errors.append("accessModes must be [ReadWriteMany]: head and workers mount it at once")
    storage = str(doc["spec"].get("resources", {}).get("requests", {}).get("storage", ""))
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?([KMGTPE]i?)?", storage):
        errors.append(f"resources.requests.storage {storage!r} is not a quantity")
    return errors


def _manifest_errors(doc: dict[str, Any]) -> list[str]:
    if doc.get("kind") in CRD_FILES:
        return schema_errors(doc, doc["kind"]) or operator_errors(doc)
    if doc.get("kind") == "PersistentVolumeClaim":
        return _pvc_errors(doc)
    return [f"no validation for kind {doc.get('kind')!r}: add one before adding such a manifest"]


@pytest.fixture(scope="module")
def crds() -> None:
    missing = [name for name in CRD_FILES.values() if not (CRD_DIR / name).is_file()]
    if missing:
        pytest.skip(f"../shared/k8s/kuberay-v1.7.0/{missing[0]} not present")


def test_the_deploy_folder_holds_a_rayjob_a_raycluster_and_the_claim() -> None:
    kinds = sorted(d["kind"] for p in MANIFEST_FILES for d in _docs(p))
    assert kinds == ["PersistentVolumeClaim", "RayCluster", "RayJob"]


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.name)
def test_manifest_is_valid(path: Path, request: pytest.FixtureRequest) -> None:
    for doc in _docs(path):
        if doc.get("kind") in CRD_FILES:
            request.getfixturevalue("crds")
        assert _manifest_errors(doc) == [], f"{path.name}: {doc.get('kind')}"


@pytest.mark.parametrize(
    ("dotted", "value", "expected"),
    [
        ("spec.accessModes", ["ReadWriteOnce"], "ReadWriteMany"),
        ("spec.storageClass", "nfs", "unknown spec fields ['storageClass']"),
        ("spec.resources.requests.storage", "fifty gigs", "not a quantity"),
        ("apiVersion", "v2", "expected apiVersion v1"),
    ],
)
def test_the_claim_check_catches(dotted: str, value: Any, expected: str) -> None:
    doc = copy.deepcopy(_only("PersistentVolumeClaim"))
    assert _pvc_errors(doc) == []
    assert any(expected in e for e in _pvc_errors(_set(doc, dotted, value)))


def _rayjob() -> dict[str, Any]:
    return copy.deepcopy(_only("RayJob"))


def _set(doc: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    node = doc
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()
_WORKER = "spec.rayClusterSpec.workerGroupSpecs.0"
_HEAD_CONTAINER = "spec.rayClusterSpec.headGroupSpec.template.spec.containers.0"


def _rename(dotted: str, new: str) -> Any:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = dotted.split(".")
        node = doc
        for p in parents:
            node = node[int(p) if p.isdigit() else p]
        node[new] = node.pop(last)

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_rename("spec.rayClusterSpec.workerGroupSpecs", "workerGroupSpec"), "'workerGroupSpec' was unexpected"),
        (_rename(f"{_HEAD_CONTAINER}.volumeMounts", "volumeMount"), "'volumeMount' was unexpected"),
        (_rename("metadata.name", "nmae"), "'nmae' was unexpected"),
        (lambda d: _set(d, f"{_WORKER}.replicas", "two"), "'two' is not of type 'integer'"),
        (lambda d: _set(d, f"{_WORKER}.replicas", 2**31), "is greater than the maximum of 2147483647"),
        (lambda d: _set(d, f"{_WORKER}.groupName", _DELETE), "'groupName' is a required property"),
        (lambda d: _set(d, f"{_WORKER}.template", _DELETE), "'template' is a required property"),
        (lambda d: _set(d, "spec.rayClusterSpec.headGroupSpec", _DELETE), "'headGroupSpec' is a required property"),
        (lambda d: _set(d, "spec.rayClusterSpec.headGroupSpec.rayStartParams.num-cpus", 0), "0 is not of type 'string'"),
        (lambda d: _set(d, "spec.shutdownAfterJobFinishes", "yes"), "'yes' is not of type 'boolean'"),
        (lambda d: _set(d, f"{_HEAD_CONTAINER}.resources.limits.cpu", "four"), "'four' does not match"),
        (lambda d: _set(d, f"{_WORKER}.template.spec.tolerations", None), "None is not of type 'array'"),
        (lambda d: _set(d, f"{_HEAD_CONTAINER}.ports.1.containerPort", 6379), "have the same key"),
        (lambda d: _set(d, "spec.managedBy", "ray.io/kuberay-operator"), "cannot evaluate: self in ["),
        (lambda d: _set(d, "kind", "RayService"), "'RayJob' was expected"),
        (lambda d: _set(d, "apiVersion", "ray.io/v1alpha1"), "'ray.io/v1' was expected"),
    ],
    ids=[
        "misspelled-workerGroupSpecs", "misspelled-volumeMounts", "unknown-metadata-field", "replicas-string",
        "replicas-int32-overflow", "missing-groupName", "missing-template", "missing-headGroupSpec",
        "rayStartParams-int", "bool-as-string", "bad-quantity", "null-list", "duplicate-port", "cel-guarded-field",
        "wrong-kind", "wrong-apiVersion",
    ],
)  # fmt: skip
def test_the_schema_check_catches(mutate: Any, expected: str, crds: None) -> None:
    doc = _rayjob()
    assert schema_errors(doc, "RayJob") == []
    mutate(doc)
    errors = schema_errors(doc, "RayJob")
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize("value", [4, "4", "500m", "1.5", "16Gi", "1e3"])
def test_int_or_string_quantities_take_both_forms(value: Any, crds: None) -> None:
    doc = _set(_rayjob(), f"{_HEAD_CONTAINER}.resources.limits.cpu", value)
    assert schema_errors(doc, "RayJob") == []


def test_required_fields_with_a_default_may_be_omitted(crds: None) -> None:
    doc = _set(_set(_rayjob(), f"{_WORKER}.minReplicas", _DELETE), f"{_WORKER}.maxReplicas", _DELETE)
    assert schema_errors(doc, "RayJob") == []


def test_nullable_fields_take_null(crds: None) -> None:
    doc = _rayjob()
    doc["status"] = {"rayClusterStatus": {"lastUpdateTime": None}}
    assert schema_errors(doc, "RayJob") == []
    doc["status"]["rayClusterStatus"]["lastUpdateTime"] = "yesterday"
    assert any("is not a 'date-time'" in e for e in schema_errors(doc, "RayJob"))


def test_the_converter_refuses_keywords_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="x-kubernetes-embedded-resource"):
        openapi_to_json_schema({"type": "object", "x-kubernetes-embedded-resource": True})
    with pytest.raises(ValueError, match="format 'uuid'"):
        openapi_to_json_schema({"type": "string", "format": "uuid"})
    preserved = openapi_to_json_schema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    assert KubernetesValidator(preserved).is_valid({"anything": 1})
    assert not KubernetesValidator(openapi_to_json_schema({"type": "object"})).is_valid({"anything": 1})


@pytest.mark.parametrize(
    ("dotted", "value", "expected"),
    [
        ("metadata.name", "finrl_lite_pbt", "DNS-1035"),
        ("metadata.name", "x" * 48, "at most 47"),
        (f"{_WORKER}.minReplicas", 5, "minReplicas (5) <= maxReplicas (4)"),
        (f"{_WORKER}.template.spec.containers", [], "at least one container"),
        ("spec.ttlSecondsAfterFinished", -1, "non-negative"),
        ("spec.activeDeadlineSeconds", 0, "must be positive"),
    ],
)
def test_the_operator_check_catches(dotted: str, value: Any, expected: str, crds: None) -> None:
    doc = _set(_rayjob(), dotted, value)
    assert schema_errors(doc, "RayJob") == []
    assert any(expected in e for e in operator_errors(doc)), operator_errors(doc)


def test_rayjob_and_raycluster_run_the_same_cluster() -> None:
    assert _only("RayJob")["spec"]["rayClusterSpec"] == _only("RayCluster")["spec"]


def test_rayjob_cleans_up_after_itself() -> None:
    spec = _only("RayJob")["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0


def _ray_container(pod_template: dict[str, Any]) -> dict[str, Any]:
    return pod_template["spec"]["containers"][0]  # KubeRay runs Ray in the first container


def test_gpu_workers_request_gpus_and_tolerate_the_taint_the_head_does_not_need_one() -> None:
    spec = _only("RayJob")["spec"]["rayClusterSpec"]
    (worker,) = spec["workerGroupSpecs"]
    assert 0 <= worker["minReplicas"] <= worker["replicas"] <= worker["maxReplicas"] and worker["replicas"] >= 1
    resources = _ray_container(worker["template"])["resources"]
    assert int(resources["limits"][GPU]) >= 1
    assert resources["requests"].get(GPU, resources["limits"][GPU]) == resources["limits"][GPU]
    tolerations = worker["template"]["spec"]["tolerations"]
    assert any(
        t["key"] == GPU and t.get("effect", "NoSchedule") == "NoSchedule" and t.get("operator") in ("Exists", "Equal")
        for t in tolerations
    )
    head = _ray_container(spec["headGroupSpec"]["template"])["resources"]
    assert GPU not in head.get("limits", {}) and GPU not in head.get("requests", {})
    assert spec["headGroupSpec"]["rayStartParams"].get("num-cpus") == "0"  # trials go to the GPU workers
    for container in (_ray_container(worker["template"]), _ray_container(spec["headGroupSpec"]["template"])):
        assert set(container["resources"]["requests"]) >= {"cpu", "memory"} and "memory" in container["resources"]["limits"]


def _shared_mount(pod_template: dict[str, Any], claim: str) -> str:
    """Where the ray container mounts the volume backed by `claim`."""
    (volume,) = [v for v in pod_template["spec"]["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == claim]
    (mount,) = [m for m in _ray_container(pod_template)["volumeMounts"] if m["name"] == volume["name"]]
    assert not mount.get("readOnly", False)
    return mount["mountPath"]


def _entrypoint() -> list[str]:
    return shlex.split(_only("RayJob")["spec"]["entrypoint"])


def _option(argv: list[str], name: str) -> list[str]:
    """Every value of `name` in argv (`--name value` or `--name=value`)."""
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]
    return values + [a.split("=", 1)[1] for a in argv if a.startswith(name + "=")]


def test_head_and_workers_mount_the_shared_claim_where_the_run_writes() -> None:
    claim = _only("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    spec = _only("RayJob")["spec"]["rayClusterSpec"]
    templates = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
    (mount_path,) = {_shared_mount(t, claim["metadata"]["name"]) for t in templates}
    argv = _entrypoint()
    (out,) = _option(argv, "--out")
    storage = [s.split("=", 1)[1] for s in _option(argv, "--set") if s.startswith("population.storage_path=")]
    assert len(storage) == 1
    for path in (out, storage[0]):
        assert Path(path).is_relative_to(mount_path), f"{path} is not on the shared volume {mount_path}"


def _console_script() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    (line,) = [ln for ln in cfg["options.entry_points"]["console_scripts"].splitlines() if ln.strip()]
    return line.split("=", 1)[0].strip()


def test_entrypoint_runs_our_console_script_against_the_cluster() -> None:
    argv = _entrypoint()
    assert argv[:2] == [_console_script(), "pbt"]
    assert _option(argv, "--address") == ["auto"]


# ---------------------------------------------------------------------------------------------------------------
# Image and versions
# ---------------------------------------------------------------------------------------------------------------


def _dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def _dockerfile_base() -> tuple[str, str]:
    """(Ray version, default variant) of the Dockerfile's FROM line, with its ARG default substituted."""
    text = _dockerfile()
    (variant,) = re.findall(r"^ARG VARIANT=(\S+)$", text, flags=re.M)
    (version,) = re.findall(r"^FROM rayproject/ray:(\d+\.\d+\.\d+)-\$\{VARIANT\}$", text, flags=re.M)
    return version, variant


def _installed_ray() -> str:
    try:
        return importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("ray is not installed here")


def test_ray_version_is_the_same_in_the_image_the_manifests_and_here() -> None:
    version, variant = _dockerfile_base()
    assert variant.startswith("py3")
    ray_versions = {cluster_spec(_only(k))["rayVersion"] for k in CRD_FILES}
    assert ray_versions == {version} == {_installed_ray()}
    spec = _only("RayJob")["spec"]["rayClusterSpec"]
    head_image = _ray_container(spec["headGroupSpec"]["template"])["image"]
    worker_images = [_ray_container(g["template"])["image"] for g in spec["workerGroupSpecs"]]
    assert head_image.rsplit(":", 1)[1] == f"{version}-{variant}"  # the tags the README builds
    for image in worker_images:
        assert re.fullmatch(rf"{re.escape(version)}-{re.escape(variant)}-(gpu|cu\d+)", image.rsplit(":", 1)[1]), image
    assert {i.rsplit(":", 1)[0] for i in [head_image, *worker_images]} == {head_image.rsplit(":", 1)[0]}


def test_dockerfile_installs_the_rllib_extra_with_ray_pinned_within_setup_cfg() -> None:
    version, _ = _dockerfile_base()
    text = _dockerfile().replace("\\\n", " ")  # join continued lines
    (install,) = re.findall(r"pip install [^\n]*", text)
    args = shlex.split(install)
    assert ".[rllib]" in args
    (ray_pin,) = [Requirement(a) for a in args if a.startswith("ray[")]
    assert str(ray_pin.specifier) == f"=={version}"
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    (wanted,) = [Requirement(r) for r in cfg["options.extras_require"]["rllib"].split() if r.startswith("ray[")]
    assert set(ray_pin.extras) >= set(wanted.extras) and version in SpecifierSet(str(wanted.specifier))
    copied = {Path(src).parts[0] for line in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", text, flags=re.M) for src in line.split()}
    assert {"setup.cfg", "pyproject.toml", "README.md", "finrl_lite", "configs"} <= copied
    assert all((REPO / c).exists() for c in copied)


# ---------------------------------------------------------------------------------------------------------------
# The entrypoint against our own command line
# ---------------------------------------------------------------------------------------------------------------


def _cli_command(name: str) -> Any:
    """The click command `finrl-lite <name>`, or LookupError when the CLI has none."""
    import typer

    from finrl_lite.cli import app

    group = typer.main.get_command(app)
    command = group.get_command(group.make_context("finrl-lite", [name], resilient_parsing=True), name)
    if command is None:
        raise LookupError(f"finrl-lite has no {name!r} command")
    return command


def cli_error(name: str, args: list[str]) -> str | None:
    """Parse `finrl-lite <name> ARGS` with our parser without running it: the usage error, or None."""
    try:
        _cli_command(name).make_context(name, list(args))
    except Exception as exc:  # typer vendors click, so its exception classes are private
        if not hasattr(exc, "format_message"):
            raise
        return exc.format_message()
    return None


def test_cli_check_bites() -> None:
    good = ["--config", str(REPO / "configs/quickstart.yaml"), "--out", "/mnt/shared/runs/x", "--set", "train.seeds=[0]"]
    assert cli_error("train", good) is None
    assert "No such option: --adress" in (cli_error("train", [*good, "--adress", "auto"]) or "")
    assert "requires an argument" in (cli_error("train", [*good, "--out"]) or "")
    with pytest.raises(LookupError):
        _cli_command("no-such-command")


def _image_path_in_repo(path: str) -> Path:
    """A path inside the image's WORKDIR, as a path in this repository (LookupError if it does not exist yet)."""
    (workdir,) = re.findall(r"^WORKDIR (\S+)$", _dockerfile(), flags=re.M)
    relative = Path(path).relative_to(workdir)
    if not (REPO / relative).is_file():
        raise LookupError(f"{relative} does not exist")
    return REPO / relative


def test_entrypoint_arguments_are_accepted_by_finrl_lite_pbt() -> None:
    from finrl_lite.config import load_config

    argv = _entrypoint()
    _cli_command("pbt")
    (config,) = _option(argv, "--config")
    local_config = _image_path_in_repo(config)
    args = [str(local_config) if a == config else a for a in argv[2:]]
    assert cli_error("pbt", args) is None
    overrides = _option(argv, "--set")
    cfg = load_config(local_config, overrides)  # the --set keys exist and their values are valid
    (storage,) = [s.split("=", 1)[1] for s in overrides if s.startswith("population.storage_path=")]
    assert str(cfg.population.storage_path) == storage
    assert cfg.population.resources_per_trial.gpu > 0 and cfg.env.device == "cuda"  # the GPU workers' GPUs are used
