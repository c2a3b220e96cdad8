"""Render every Helm chart with every values file, lint it, and validate the manifests.

Offline: Helm is the helm-python-sdk's embedded Helm v4 (no binary, no cluster), the schemas are
kubernetes-validate's bundled ones. Usage:

    python render_charts.py --charts helm --out DIR --kube-version 1.35.0

Writes DIR/<chart>/<values file stem>/<template>.yaml for checkov, prints one line per chart and
values file, and exits 1 if a chart fails to render or lint, or a manifest fails its schema.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

# Custom resources whose CRDs are kept under infra/checks/crds (copied from the pinned upstream
# release, see its README): validated against the CRD's openAPIV3Schema, with unknown fields refused
# as the API server's strict field validation does.
CRD_DIR = pathlib.Path(__file__).resolve().parent / "crds"

# Custom resources without a kept CRD: skipped by name, each with its reason.
SKIPPED_KINDS = {
    ("argoproj.io/v1alpha1", "Application"): "Argo CD CRD, not in the Kubernetes schemas",
}

NAMESPACE = "heart"


def values_files(chart: pathlib.Path) -> list[pathlib.Path]:
    """values.yaml first (the chart's defaults alone), then each environment's file over them."""
    return [chart / "values.yaml", *sorted(chart.glob("values-*.yaml"))]


def _strict(schema: dict) -> dict:
    """The CRD schema as the API server applies it: objects with `properties` accept no other key
    unless they preserve unknown fields; x-kubernetes-int-or-string accepts both."""
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) if isinstance(v, dict) else ([_strict(i) for i in v] if isinstance(v, list) else v)
           for k, v in schema.items() if k != "properties"}
    if "properties" in schema:
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def load_crd_schemas(crd_dir: pathlib.Path = CRD_DIR) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) → strict JSON schema of every served version of every kept CRD."""
    schemas = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served", True):
                continue
            schema = _strict(version["schema"]["openAPIV3Schema"])
            # apiVersion, kind and metadata are the API server's, not the CRD's to describe.
            schema.setdefault("properties", {}).update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                        "metadata": {"type": "object"}})
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


CRD_SCHEMAS: dict[tuple[str, str], dict] = {}


def validate_custom(doc: dict, schema: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def validate_documents(path: pathlib.Path, text: str, kube_version: str) -> list[str]:
    """Schema errors of every document in one rendered template ([] when all pass or are skipped)."""
    errors = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in SKIPPED_KINDS:
            continue
        if key in CRD_SCHEMAS:
            name = doc.get("metadata", {}).get("name")
            errors += [f"{path}: {key[1]} {name}: {e}" for e in validate_custom(doc, CRD_SCHEMAS[key])]
            continue
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = ".".join(str(p) for p in e.path) or "(root)"
            errors.append(f"{path}: {key[1]} {doc.get('metadata', {}).get('name')}: {where}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            errors.append(f"{path}: {key[1]}: no schema for {key[0]} in Kubernetes {kube_version} ({e})")
    return errors


# The environments whose edge must export its telemetry to the collector (under Spin the host's
# heart_edge_* metrics do not exist: the shim's OpenTelemetry export is all there is).
TELEMETRY_ENVIRONMENTS = ("values-staging", "values-production")
# What the edge's dashboards and alerts read from the collector (docs/operations.md).
TELEMETRY_SIGNALS = ("traces", "metrics")


def _collector(docs: list[dict]) -> tuple[dict, dict] | None:
    """The collector's Service and parsed configuration among heart-platform's rendered documents."""
    config_map = next((d for d in docs if d.get("kind") == "ConfigMap" and "config.yaml" in d.get("data", {})
                       and "receivers" in d["data"]["config.yaml"]), None)
    if config_map is None:
        return None
    service = next((d for d in docs if d.get("kind") == "Service"
                    and d["metadata"]["name"] == config_map["metadata"]["name"]), None)
    return (service, yaml.safe_load(config_map["data"]["config.yaml"])) if service else None


def collector_problems(config: dict) -> list[str]:
    """A collector configuration the collector would refuse to start with: a pipeline naming a
    component that is not defined, a connector used on one side only, no pipeline at all."""
    problems = []
    pipelines = config.get("service", {}).get("pipelines") or {}
    if not pipelines:
        return ["collector: no pipelines"]
    connectors = set(config.get("connectors") or {})
    used_as = {"exporters": set(), "receivers": set()}
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            defined = set(config.get(kind) or {}) | (connectors if kind != "processors" else set())
            for component in pipeline.get(kind) or []:
                if component not in defined:
                    problems.append(f"collector: pipeline {name} uses {kind[:-1]} {component}, which is not defined")
                if component in connectors:
                    used_as[kind].add(component)
        if not pipeline.get("receivers") or not pipeline.get("exporters"):
            problems.append(f"collector: pipeline {name} needs receivers and exporters")
    for connector in connectors:
        if connector not in used_as["exporters"] or connector not in used_as["receivers"]:
            problems.append(f"collector: connector {connector} must be an exporter of one pipeline and a receiver of another")
    for extension in config.get("service", {}).get("extensions") or []:
        if extension not in (config.get("extensions") or {}):
            problems.append(f"collector: extension {extension} is not defined")
    return problems


def scrape_problems(docs: list[dict], service: dict) -> list[str]:
    """The collector's ServiceMonitor selects its Service and scrapes ports the Service has."""
    monitors = [d for d in docs if d.get("kind") == "ServiceMonitor"
                and d["metadata"].get("namespace") == service["metadata"]["namespace"]]
    labels = service["metadata"].get("labels") or {}
    selecting = [m for m in monitors
                 if all(labels.get(k) == v for k, v in m["spec"]["selector"].get("matchLabels", {}).items())]
    if not selecting:
        return [f"collector: no ServiceMonitor selects the Service {service['metadata']['name']}"]
    names = {p.get("name") for p in service["spec"]["ports"]}
    return [f"collector: ServiceMonitor {m['metadata']['name']} scrapes port {e.get('port')}, which the Service does not name"
            for m in selecting for e in m["spec"].get("endpoints", []) if e.get("port") not in names]


def telemetry_problems(rendered: dict[tuple[str, str], list[dict]]) -> list[str]:
    """The edge's SpinAppExecutor, in staging and production, exports traces and metrics to the
    OTLP/HTTP receiver of helm/heart-platform's collector: the URL names its Service, namespace and
    port, and the collector's configuration is one it would start with. Prometheus scrapes the
    collector (its ServiceMonitor), and the edge's alerts and the dashboard select that job."""
    found = _collector(rendered.get(("heart-platform", "values"), []))
    if found is None:
        return ["heart-platform: no OpenTelemetry Collector (ConfigMap with a collector config and its Service)"]
    service, config = found
    problems = collector_problems(config)
    http = ((config.get("receivers") or {}).get("otlp") or {}).get("protocols", {}).get("http")
    if http is None:
        return problems + ["collector: no OTLP/HTTP receiver (Spin exports http/protobuf)"]
    port = int(str(http.get("endpoint", ":4318")).rsplit(":", 1)[1])
    if not any(p["port"] == port for p in service["spec"]["ports"]):
        problems.append(f"collector: the Service {service['metadata']['name']} does not expose the OTLP/HTTP port {port}")
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local:{port}"
    problems += scrape_problems(rendered.get(("heart-platform", "values"), []), service)
    # Prometheus names the scraped job after the Service: the edge's alerts and the dashboard select it.
    job = f'job="{service["metadata"]["name"]}"'
    for environment in TELEMETRY_ENVIRONMENTS:
        rules = [d for d in rendered.get(("heart-edge", environment), []) if d.get("kind") == "PrometheusRule"]
        exprs = [str(r.get("expr", "")) for rule in rules for g in rule["spec"].get("groups", []) for r in g.get("rules", [])]
        if rules and not any(job in e for e in exprs):
            problems.append(f"heart-edge + {environment}.yaml: the PrometheusRule does not select the collector's {job}")
        dashboards = [v for d in rendered.get(("heart-core", environment), []) if d.get("kind") == "ConfigMap"
                      for k, v in (d.get("data") or {}).items() if k.endswith(".json")]
        if dashboards and not any(json.dumps(job)[1:-1] in text for text in dashboards):
            problems.append(f"heart-core + {environment}.yaml: no dashboard panel selects the collector's {job}")
    for environment in TELEMETRY_ENVIRONMENTS:
        executors = [d for d in rendered.get(("heart-edge", environment), []) if d.get("kind") == "SpinAppExecutor"]
        if not executors:
            problems.append(f"heart-edge + {environment}.yaml: no SpinAppExecutor rendered")
        for executor in executors:
            otel = executor["spec"].get("deploymentConfig", {}).get("otel") or {}
            label = f"heart-edge + {environment}.yaml: SpinAppExecutor {executor['metadata']['name']}"
            for signal in TELEMETRY_SIGNALS:
                endpoint = otel.get(f"exporter_otlp_{signal}_endpoint")
                if not endpoint:
                    problems.append(f"{label} exports no {signal} (deploymentConfig.otel.exporter_otlp_{signal}_endpoint unset): "
                                    "under Spin the edge then has no telemetry")
                elif endpoint != f"http://{host}/v1/{signal}":
                    problems.append(f"{label}: {signal} go to {endpoint}, not to the collector's http://{host}/v1/{signal}")
    return problems


def check_values_file(chart_dir: pathlib.Path, values_file: pathlib.Path, out: pathlib.Path, kube_version: str,
                      rendered_docs: dict[tuple[str, str], list[dict]] | None = None) -> list[str]:
    overrides = yaml.safe_load(values_file.read_text()) or {}
    label = f"{chart_dir.name} + {values_file.name}"
    # values.yaml is the chart's defaults already; an environment file goes over them, as `helm -f`.
    values = None if values_file.name == "values.yaml" else overrides

    report = helm.lint(str(chart_dir), values, strict=True, namespace=NAMESPACE, kube_version=f"v{kube_version}")
    problems = [f"{label}: lint: {m['path']}: {m['error']}" for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    problems += [f"{label}: lint: {e}" for e in report.get("errors", [])]

    with helm.Chart.load(str(chart_dir)) as chart:
        try:
            rendered = chart.render(values, name=chart_dir.name, namespace=NAMESPACE, is_install=True)
        except helm.HelmError as e:
            return problems + [f"{label}: render: {e}"]

    target = out / chart_dir.name / values_file.stem
    target.mkdir(parents=True, exist_ok=True)
    documents = 0
    for template, text in sorted(rendered.items()):
        if not text.strip() or not template.endswith((".yaml", ".yml")):
            continue
        path = target / pathlib.Path(template).name
        path.write_text(text)
        docs = [d for d in yaml.safe_load_all(text) if d]
        documents += len(docs)
        if rendered_docs is not None:
            rendered_docs.setdefault((chart_dir.name, values_file.stem), []).extend(docs)
        problems += validate_documents(path, text, kube_version)
    print(f"  {label}: {documents} manifests rendered" + (f", {len(problems)} problems" if problems else ", valid"))
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--charts", type=pathlib.Path, required=True, help="folder holding the charts")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="folder for the rendered manifests")
    parser.add_argument("--kube-version", required=True, help="Kubernetes version of the schemas (EKS's)")
    args = parser.parse_args()

    CRD_SCHEMAS.update(load_crd_schemas())
    for api_version, kind in sorted(CRD_SCHEMAS):
        print(f"  {kind} ({api_version}): validated against its CRD in {CRD_DIR.name}/")
    for (api_version, kind), reason in SKIPPED_KINDS.items():
        print(f"  schema check skipped for {kind} ({api_version}): {reason}")
    charts = sorted(p.parent for p in args.charts.glob("*/Chart.yaml"))
    if not charts:
        print(f"no charts under {args.charts}", file=sys.stderr)
        return 1
    problems = []
    rendered: dict[tuple[str, str], list[dict]] = {}
    for chart_dir in charts:
        for values_file in values_files(chart_dir):
            problems += check_values_file(chart_dir, values_file, args.out, args.kube_version, rendered)
    telemetry = telemetry_problems(rendered)
    print("  telemetry: the edge's SpinAppExecutor exports traces and metrics to the collector in "
          f"{' and '.join(TELEMETRY_ENVIRONMENTS)}" + (f": {len(telemetry)} problems" if telemetry else ", wired"))
    problems += telemetry
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
