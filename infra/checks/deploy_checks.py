"""Checks that the deployment would work, not only that its files parse (infra/check.sh).

    python deploy_checks.py versions ROOT      Kubernetes and add-on pins against the supported-versions table
    python deploy_checks.py environments ROOT  staging and production link the one root module (shared/environment)
    python deploy_checks.py lbc-policy ROOT    the load balancer controller's IAM policy is the upstream file
    python deploy_checks.py oidc ROOT          the CD role trusts exactly the subjects the workflows send
    python deploy_checks.py cluster ROOT       default gp3 StorageClass, vpc-cni network policy, RDS MySQL 8.4
    python deploy_checks.py releases ROOT      edge and core ship through separate workflows; production promotes
    python deploy_checks.py compose ROOT       compose.yaml against the Compose Specification's schema
    python deploy_checks.py dashboards ROOT    the charts' Grafana dashboards: valid JSON, unique panel ids,
                                               panels on the 24-column grid without overlap, a query each
    python deploy_checks.py image ROOT [--dockerignore F] [--dockerfile F] [--prepare-only]
                                               the image's build stage on exactly the context .dockerignore admits

ROOT is the tree to check (the repository, or the self-test's broken copy). Each prints what it
found and exits 1 on any problem. No network: everything is read from ROOT and infra/checks/.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import hashlib
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import hcl2
import jsonschema
import yaml

CHECKS = pathlib.Path(__file__).resolve().parent


class Problems(list):
    def add(self, message: str) -> None:
        print(f"  FAIL {message}", file=sys.stderr)
        self.append(message)


def ok(message: str) -> None:
    print(f"  ok   {message}")


def load_hcl(path: pathlib.Path) -> dict:
    with path.open() as f:
        return hcl2.load(f)


def attr(block: dict, key: str, default=None):
    """An attribute's value (this HCL parser wraps every attribute value in a one-item list)."""
    value = block.get(key)
    if value is None:
        return default
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def blocks(doc: dict, kind: str, *labels: str):
    """Blocks of one kind (resource/data/module/variable…) whose labels start with `labels`."""
    for block in doc.get(kind, []):
        current = block
        for label in labels:
            if not isinstance(current, dict) or label not in current:
                current = None
                break
            current = current[label]
        if current is not None:
            yield current


def versions(root: pathlib.Path) -> dict:
    return yaml.safe_load((root / "infra/versions/versions.yaml").read_text())


# --- versions ---------------------------------------------------------------------------------

def check_versions(root: pathlib.Path) -> Problems:
    problems = Problems()
    pins = versions(root)
    table = yaml.safe_load((root / "infra/versions/supported-versions.yaml").read_text())
    today = datetime.date.fromisoformat(os.environ.get("HEART_TODAY", datetime.date.today().isoformat()))
    as_of = datetime.date.fromisoformat(table["as_of"])
    age = (today - as_of).days
    if age > table["max_age_days"]:
        problems.add(f"supported-versions.yaml is {age} days old (as_of {as_of}, limit {table['max_age_days']}): re-read the sources")
    else:
        ok(f"supported-versions table as of {as_of} ({age} days old)")

    k8s = str(pins["kubernetes"])
    eks = table["eks"].get(k8s)
    if eks is None:
        problems.add(f"Kubernetes {k8s} is not in the EKS table")
    else:
        end = datetime.date.fromisoformat(eks["end_of_standard"])
        if today > end:
            problems.add(f"EKS {k8s}: standard support ended {end} (extended support ends {eks['end_of_extended']}); pick a newer version")
        else:
            ok(f"EKS {k8s} is in standard support until {end}")

    pinned = dict(pins["charts"])
    pinned["spin_shim"] = pins["spin_shim"]["version"]
    for addon, releases in table["addons"].items():
        version = pinned.get(addon)
        entry = releases.get(version)
        if entry is None:
            problems.add(f"{addon} {version}: not in the supported-versions table")
        elif k8s not in entry["kubernetes"]:
            problems.add(f"{addon} {version} is not known to support Kubernetes {k8s} (table: {entry['kubernetes']})")
        else:
            ok(f"{addon} {version} supports Kubernetes {k8s} ({entry['source']})")

    tag = pins["image_tags"]["cluster_autoscaler"]
    if not re.fullmatch(rf"v{re.escape(k8s)}\.\d+", tag):
        problems.add(f"cluster-autoscaler image {tag} does not match the cluster's minor {k8s}")
    else:
        ok(f"cluster-autoscaler image {tag} matches Kubernetes {k8s}")

    # One place: no module or environment may carry its own version numbers.
    tf = root / "infra/terraform"
    for env in sorted((tf / "envs").iterdir()):
        tfvars = (env / "terraform.tfvars").read_text()
        if re.search(r"^\s*(kubernetes_version|chart_versions)\s*=", tfvars, re.M):
            problems.add(f"{env.name}/terraform.tfvars pins versions itself; they belong in infra/versions/versions.yaml")
        main = (env / "main.tf").read_text()
        if "infra/versions/versions.yaml" not in main.replace("../", "") and "versions/versions.yaml" not in main:
            problems.add(f"envs/{env.name}/main.tf does not read infra/versions/versions.yaml")
        else:
            ok(f"envs/{env.name} takes its versions from infra/versions/versions.yaml")
    for module, var in (("eks", "kubernetes_version"), ("platform", "versions"), ("addons", "versions")):
        doc = load_hcl(tf / "modules" / module / "variables.tf")
        for variable in blocks(doc, "variable", var):
            if "default" in variable:
                problems.add(f"modules/{module} variable {var} has a default: versions come only from versions.yaml")
    return problems


# --- environments ----------------------------------------------------------------------------

def check_environments(root: pathlib.Path) -> Problems:
    """One root module: every environment is the same Terraform, its own only in terraform.tfvars
    and its backend. Its .tf files are links to infra/terraform/shared/environment, so a change
    reaches every environment at once and none can drift."""
    problems = Problems()
    tf = root / "infra/terraform"
    shared_dir = tf / "shared" / "environment"
    shared = sorted(p.name for p in shared_dir.glob("*.tf"))
    for env in sorted((tf / "envs").iterdir()):
        own = sorted(p.name for p in env.glob("*.tf"))
        for name in sorted(set(shared) - set(own)):
            problems.add(f"envs/{env.name}/{name} is missing: link it to ../../shared/environment/{name}")
        for name in own:
            path = env / name
            if not path.is_symlink() or path.resolve() != (shared_dir / name).resolve():
                problems.add(f"envs/{env.name}/{name} is not a link to ../../shared/environment/{name}: "
                             "environments differ only in terraform.tfvars and their backend")
    if not problems:
        ok(f"envs/* all link the one root module in shared/environment ({', '.join(shared)})")
    return problems


# --- load balancer controller policy ---------------------------------------------------------

def check_lbc_policy(root: pathlib.Path) -> Problems:
    problems = Problems()
    pins = versions(root)
    meta = pins["lbc_iam_policy"]
    chart = pins["charts"]["aws_load_balancer_controller"]
    if meta["version"].lstrip("v") != chart:
        problems.add(f"the IAM policy is from {meta['version']} but the chart is {chart}: take the policy of the pinned release")
    path = root / meta["file"]
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta["sha256"]:
        problems.add(f"{meta['file']} is not the upstream {meta['version']} policy (sha256 {digest[:12]}…, expected {meta['sha256'][:12]}…)")
    else:
        ok(f"{path.name} is byte for byte the published {meta['version']} policy")

    policy = json.loads(data)
    statements = policy["Statement"]

    def allows(action: str, resource_fragment: str) -> bool:
        for s in statements:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            if s["Effect"] == "Allow" and action in actions and any(resource_fragment in r or r == "*" for r in resources):
                return True
        return False

    for fragment in ("listener/app/", "listener-rule/app/"):
        if not allows("elasticloadbalancing:AddTags", fragment):
            problems.add(f"no elasticloadbalancing:AddTags on {fragment}* ARNs (the controller tags its listeners and rules)")
    for s in statements:
        for test, conditions in s.get("Condition", {}).items():
            if test.startswith("String") and "Like" not in test or test.startswith("Arn") and test == "ArnEquals":
                for key, values in conditions.items():
                    values = values if isinstance(values, list) else [values]
                    if any("*" in v for v in values):
                        problems.add(f"{test} on {key} with a wildcard value never matches: {values}")
    # Terraform must attach that file, not a document of its own.
    iam = (root / "infra/terraform/modules/platform/iam-policies.tf").read_text()
    if 'data "aws_iam_policy_document" "lb_controller"' in iam:
        problems.add("modules/platform still writes its own lb_controller policy document")
    main = (root / "infra/terraform/modules/platform/main.tf").read_text()
    rel = pathlib.Path(meta["file"]).relative_to("infra/terraform/modules/platform")
    if f'file("${{path.module}}/{rel}")' not in main + iam:
        problems.add(f"modules/platform does not attach file(\"${{path.module}}/{rel}\") to the controller's role")
    else:
        ok(f"the controller's IRSA role gets file(\"{rel}\")")
    return problems


# --- GitHub OIDC trust vs. what the workflows send --------------------------------------------

def tfvars(env_dir: pathlib.Path) -> dict:
    doc = load_hcl(env_dir / "terraform.tfvars")
    return {k: attr(doc, k) for k in doc}


def trusted_subjects(root: pathlib.Path, env_dir: pathlib.Path) -> list[str]:
    """The `sub` values of the CD role's trust policy, rendered for one environment.

    Evaluates the small expression language the trust uses: a list of strings, or
    `[for x in var.list : "…${var.a}…${x}…"]`, with the variables the environment passes down
    (module platform passes github_repository and github_environments to module ecr)."""
    values = tfvars(env_dir)
    ecr = load_hcl(root / "infra/terraform/modules/ecr/main.tf")
    platform = load_hcl(root / "infra/terraform/modules/platform/main.tf")
    ecr_call = next(blocks(platform, "module", "ecr"))
    env_main = load_hcl(env_dir / "main.tf")
    platform_call = next(blocks(env_main, "module", "platform"))

    def resolve_platform(expr):
        # An argument of module "platform" in the environment: var.X is the tfvars value.
        if isinstance(expr, list):
            return [resolve_platform(e) for e in expr]
        m = re.fullmatch(r"\$\{var\.(\w+)\}", str(expr))
        return values.get(m.group(1)) if m else expr

    def resolve_in_platform(expr):
        # An argument of module "ecr" in module platform: var.X is platform's argument X.
        if isinstance(expr, list):
            return [resolve_in_platform(e) for e in expr]
        m = re.fullmatch(r"\$\{var\.(\w+)\}", str(expr))
        return resolve_platform(attr(platform_call, m.group(1))) if m else expr

    def resolve_ecr_var(name: str):
        expr = attr(ecr_call, name)
        if expr is None:
            ecr_vars = load_hcl(root / "infra/terraform/modules/ecr/variables.tf")
            for v in blocks(ecr_vars, "variable", name):
                return attr(v, "default")
            raise KeyError(name)
        return resolve_in_platform(expr)

    def interpolate(template: str, bindings: dict) -> str:
        def sub(m):
            ref = m.group(1)
            if ref.startswith("var."):
                return str(resolve_ecr_var(ref[4:]))
            return str(bindings[ref])
        return re.sub(r"\$\{([\w.]+)\}", sub, template)

    for doc in blocks(ecr, "data", "aws_iam_policy_document", "cd_assume"):
        for statement in doc["statement"]:
            for cond in statement.get("condition", []):
                if attr(cond, "variable") != "token.actions.githubusercontent.com:sub":
                    continue
                if attr(cond, "test") != "StringEquals":
                    raise ValueError(f"sub is tested with {attr(cond, 'test')}; use StringEquals on exact subjects")
                expr = attr(cond, "values")
                if isinstance(expr, list):
                    return [interpolate(v, {}) for v in expr]
                m = re.fullmatch(r'\$\{\[for (\w+) in var\.(\w+) : "(.*)"\]\}', str(expr))
                if not m:
                    raise ValueError(f"cannot render the sub condition {expr!r}")
                name, listvar, template = m.groups()
                return [interpolate(template.replace("${" + name + "}", "${__x}"), {"__x": x})
                        for x in resolve_ecr_var(listvar)]
    raise ValueError("no sub condition in modules/ecr cd_assume")


def sent_subjects(workflow: dict, repository: str) -> dict[str, set[str]]:
    """Per GitHub environment (or '' for none), the `sub` claims that a workflow's AWS jobs send.

    GitHub's default subject: `repo:R:environment:E` for a job with an environment, otherwise
    `repo:R:ref:refs/heads/B` (push, workflow_dispatch) or `repo:R:pull_request`."""
    triggers = workflow.get(True, workflow.get("on", {}))  # PyYAML reads `on:` as True
    if isinstance(triggers, list):
        triggers = {t: {} for t in triggers}
    branches = set()
    for event in ("push", "workflow_dispatch", "workflow_run"):
        if event in triggers:
            spec = triggers[event] or {}
            branches |= set(spec.get("branches", ["<any branch>"]))
    out: dict[str, set[str]] = {}
    for job in workflow.get("jobs", {}).values():
        steps = job.get("steps", [])
        if not any(str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials") for s in steps):
            continue
        env = job.get("environment")
        if isinstance(env, dict):
            env = env.get("name")
        if env:
            if "${{" in str(env):
                out.setdefault("", set()).add(f"repo:{repository}:environment:<expression {env}>")
            else:
                out.setdefault(env, set()).add(f"repo:{repository}:environment:{env}")
        else:
            subs = {f"repo:{repository}:ref:refs/heads/{b}" for b in branches}
            if "pull_request" in triggers or "pull_request_target" in triggers:
                subs.add(f"repo:{repository}:pull_request")
            out.setdefault("", set()).update(subs)
    return out


def check_oidc(root: pathlib.Path) -> Problems:
    problems = Problems()
    envs = sorted(p for p in (root / "infra/terraform/envs").iterdir() if (p / "terraform.tfvars").exists())
    trust = {}
    repository = None
    for env_dir in envs:
        values = tfvars(env_dir)
        repository = values["github_repository"]
        try:
            trust[values["environment"]] = set(trusted_subjects(root, env_dir))
        except (ValueError, KeyError, StopIteration) as e:
            problems.add(f"envs/{env_dir.name}: {e}")
            continue
        print(f"  {env_dir.name}: the CD role trusts {sorted(trust[values['environment']])}")
    sent: dict[str, set[str]] = {}
    for wf in sorted((root / ".github/workflows").glob("*.yml")):
        for env, subs in sent_subjects(yaml.safe_load(wf.read_text()), repository).items():
            for sub in subs:
                print(f"  {wf.name}: a job in environment {env or '(none)'} sends sub={sub}")
            sent.setdefault(env, set()).update(subs)
    if not sent:
        problems.add("no workflow assumes an AWS role")
    for env, subs in sent.items():
        if env not in trust:
            for sub in sorted(subs):
                problems.add(f"sub={sub} is trusted by no environment's CD role (AssumeRoleWithWebIdentity is denied)")
            continue
        for sub in sorted(subs - trust[env]):
            problems.add(f"{env}: the workflows send sub={sub}, the role trusts only {sorted(trust[env])}")
    for env, subs in trust.items():
        for sub in subs:
            if ":pull_request" in sub or "*" in sub:
                problems.add(f"{env}: the CD role trusts {sub} (pull requests or wildcards may deploy)")
    if not problems:
        ok("every subject the workflows send is trusted by its environment's role, and nothing else")
    return problems


# --- cluster storage, network policy, database ----------------------------------------------

def addon_config(eks: dict, resource_name: str) -> dict | None:
    for addon in blocks(eks, "resource", "aws_eks_addon", resource_name):
        raw = attr(addon, "configuration_values")
        if raw is None:
            return {}
        return json.loads(raw)
    return None


def check_cluster(root: pathlib.Path) -> Problems:
    problems = Problems()
    eks = load_hcl(root / "infra/terraform/modules/eks/main.tf")
    ebs = addon_config(eks, "ebs_csi")
    if not ebs or not ebs.get("defaultStorageClass", {}).get("enabled"):
        problems.add("the EBS CSI add-on makes no default StorageClass (EKS has none): PVCs of Prometheus and Elasticsearch stay Pending")
    else:
        ok("aws-ebs-csi-driver add-on: its StorageClass ebs-csi-default-sc (gp3) is the default")
    cni = addon_config(eks, "vpc_cni")
    if not cni or str(cni.get("enableNetworkPolicy")).lower() != "true":
        problems.add("vpc-cni enableNetworkPolicy is off: NetworkPolicies are accepted but not enforced")
    else:
        ok("vpc-cni enforces NetworkPolicy (enableNetworkPolicy)")
    rds = load_hcl(root / "infra/terraform/modules/rds/main.tf")
    family = attr(next(blocks(rds, "resource", "aws_db_parameter_group", "this")), "family")
    rds_vars = load_hcl(root / "infra/terraform/modules/rds/variables.tf")
    engine = attr(next(blocks(rds_vars, "variable", "engine_version")), "default")
    if family != "mysql8.4" or not str(engine).startswith("8.4"):
        problems.add(f"RDS is MySQL {engine} ({family}); 8.0 is in paid extended support, use 8.4")
    else:
        ok(f"RDS MySQL {engine} ({family})")
    return problems


# --- independent releases --------------------------------------------------------------------

def check_releases(root: pathlib.Path) -> Problems:
    problems = Problems()
    wfs = {p.name: yaml.safe_load(p.read_text()) for p in (root / ".github/workflows").glob("*.yml")}
    deployables = {"heart-core": ["core-api/", "shared/", "docker/", "Cargo.lock"],
                   "heart-edge": ["edge/", "shared/", "Cargo.lock"]}
    for name, needed in deployables.items():
        file = f"release-{name.removeprefix('heart-')}.yml"
        wf = wfs.get(file)
        if wf is None:
            problems.add(f"no workflow {file}: {name} has no pipeline of its own")
            continue
        triggers = wf.get(True, wf.get("on", {}))
        if "workflow_dispatch" not in triggers:
            problems.add(f"{file}: no workflow_dispatch")
        paths = (triggers.get("push") or {}).get("paths", [])
        for prefix in needed:
            if not any(p.startswith(prefix) for p in paths):
                problems.add(f"{file}: push paths do not include {prefix}")
        other = "heart-edge" if name == "heart-core" else "heart-core"
        text = (root / ".github/workflows" / file).read_text()
        if f"helm/{other}/" in text or any(p.startswith(f"helm/{other}") for p in paths):
            problems.add(f"{file} touches helm/{other}: a release of one must not restart the other")
        if "promote" not in wf.get("jobs", {}):
            problems.add(f"{file}: no promote job (production takes the digest that passed staging)")
        else:
            promote = json.dumps(wf["jobs"]["promote"])
            if "build-push-action" in promote or "cargo build" in promote:
                problems.add(f"{file}: the promote job builds; it must copy the staging digest")
        for job_name, job in wf.get("jobs", {}).items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            for need in needs:
                if need not in wf["jobs"]:
                    problems.add(f"{file}: job {job_name} needs {need}, which is not in this workflow")
        if not any(p.startswith("helm/" + other) for p in paths):
            ok(f"{file}: own path filters, workflow_dispatch, promotes the staging digest")
    if "cd.yml" in wfs:
        problems.add("cd.yml (one pipeline for both deployables) is still there")
    core_tpl = root / "helm/heart-core/templates/ingress.yaml"
    edge_tpl = root / "helm/heart-edge/templates/ingress.yaml"
    if core_tpl.exists() or not edge_tpl.exists():
        problems.add("the public Ingress points at the edge and belongs in the edge chart")
    else:
        ok("the public Ingress is in the edge chart")
    return problems


# --- compose.yaml ----------------------------------------------------------------------------

def check_compose(root: pathlib.Path) -> Problems:
    problems = Problems()
    path = root / "compose.yaml"
    if not path.exists():
        problems.add("no compose.yaml")
        return problems
    doc = yaml.safe_load(path.read_text())
    schema = json.loads((CHECKS / "schemas/compose-spec.json").read_text())
    for error in jsonschema.Draft7Validator(schema).iter_errors(doc):
        where = ".".join(str(p) for p in error.absolute_path) or "(root)"
        problems.add(f"compose.yaml: {where}: {error.message}")
    services = doc.get("services", {})
    for needed in ("mariadb", "redis", "smtp", "s3"):
        if needed not in services:
            problems.add(f"compose.yaml: no {needed} service")
    for name, svc in services.items():
        image = str(svc.get("image", ""))
        if image and (":" not in image.split("/")[-1] or image.endswith(":latest")):
            problems.add(f"compose.yaml: {name} image {image} is not pinned")
        for port in svc.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.add(f"compose.yaml: {name} publishes {port} beyond loopback")
    if not problems:
        ok(f"compose.yaml: valid Compose file, services {sorted(services)}")
    return problems


def dashboard_problems(name: str, dashboard: dict) -> list[str]:
    """What Grafana would refuse or garble in a provisioned dashboard: panels without a unique
    integer id, outside the 24-column grid or overlapping another, a query panel without a
    Prometheus expression, a dashboard without uid or title."""
    problems = [f"{name}: no {key}" for key in ("uid", "title") if not dashboard.get(key)]
    taken: dict[tuple[int, int], int] = {}
    seen: set[int] = set()
    for panel in dashboard.get("panels", []):
        pid = panel.get("id")
        label = f"{name}: panel {pid} ({panel.get('title', 'untitled')})"
        if not isinstance(pid, int) or pid in seen:
            problems.append(f"{label}: the id is not a unique integer")
        seen.add(pid)
        grid = panel.get("gridPos", {})
        if any(not isinstance(grid.get(k), int) for k in "xywh"):
            problems.append(f"{label}: gridPos needs integer x, y, w, h")
            continue
        if grid["x"] < 0 or grid["y"] < 0 or grid["w"] < 1 or grid["h"] < 1 or grid["x"] + grid["w"] > 24:
            problems.append(f"{label}: gridPos {grid} is outside the 24-column grid")
        overlapped = {taken[(x, y)] for x in range(grid["x"], grid["x"] + grid["w"])
                      for y in range(grid["y"], grid["y"] + grid["h"]) if (x, y) in taken}
        if overlapped:
            problems.append(f"{label}: overlaps panel {sorted(overlapped)}")
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                taken[(x, y)] = pid
        if panel.get("type") != "row":
            targets = panel.get("targets") or []
            if not targets or any(not t.get("expr") for t in targets):
                problems.append(f"{label}: a query without a Prometheus expression")
            if len({t.get("refId") for t in targets}) != len(targets):
                problems.append(f"{label}: refIds are not unique")
    return problems


def check_dashboards(root: pathlib.Path) -> Problems:
    problems = Problems()
    paths = sorted(root.glob("helm/*/dashboards/*.json"))
    if not paths:
        problems.add("no dashboards under helm/*/dashboards")
    for path in paths:
        name = str(path.relative_to(root))
        try:
            dashboard = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            problems.add(f"{name}: not JSON: {e}")
            continue
        found = dashboard_problems(name, dashboard)
        for problem in found:
            problems.add(problem)
        if not found:
            ok(f"{name}: {len(dashboard.get('panels', []))} panels, unique ids, no overlap")
    return problems


# --- the image's build stage, without Docker ------------------------------------------------

def dockerignore_patterns(path: pathlib.Path) -> list[tuple[bool, re.Pattern]]:
    """(exception?, regex) per line, as Docker's patternmatcher reads .dockerignore."""
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:].strip()
        line = os.path.normpath(line).lstrip("/")
        if line == ".":
            continue
        regex, i = "", 0
        while i < len(line):
            c = line[i]
            if line.startswith("**/", i):
                regex += "(.*/)?"
                i += 3
                continue
            if line.startswith("**", i):
                regex += ".*"
                i += 2
                continue
            if c == "*":
                regex += "[^/]*"
            elif c == "?":
                regex += "[^/]"
            elif c == "[":
                j = line.index("]", i)
                regex += line[i:j + 1]
                i = j + 1
                continue
            else:
                regex += re.escape(c)
            i += 1
        patterns.append((negate, re.compile(f"^{regex}$")))
    return patterns


def excluded(rel: str, patterns) -> bool:
    """Docker's MatchesOrParentMatches with the last matching pattern winning."""
    parents = rel.split("/")
    candidates = ["/".join(parents[:i]) for i in range(1, len(parents) + 1)]
    result = False
    for negate, regex in patterns:
        if any(regex.match(c) for c in candidates):
            result = not negate
    return result


def build_context(root: pathlib.Path, dockerignore: pathlib.Path, out: pathlib.Path) -> list[str]:
    patterns = dockerignore_patterns(dockerignore)
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        # .git and build output are never part of a context we would send (also excluded by the file).
        dirnames[:] = [d for d in dirnames if d not in (".git", "target")]
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if not excluded(rel, patterns):
                files.append(rel)
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / rel, out / rel)
    return sorted(files)


def dockerfile_cargo_commands(dockerfile: pathlib.Path) -> list[str]:
    """The cargo commands of the Dockerfile's RUN instructions, in order."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    commands = []
    for line in text.splitlines():
        m = re.match(r"\s*RUN\s+(.*)", line)
        if not m:
            continue
        for part in re.split(r"&&|;", m.group(1)):
            part = part.strip()
            if part.startswith("cargo ") and not part.startswith("cargo install"):
                commands.append(part)
    return commands


def check_image(root: pathlib.Path, dockerignore: pathlib.Path, dockerfile: pathlib.Path, prepare_only: bool) -> Problems:
    problems = Problems()
    commands = dockerfile_cargo_commands(dockerfile)
    wanted = ["cargo chef prepare", "cargo chef cook", "cargo build"]
    for w in wanted:
        if not any(c.startswith(w) for c in commands):
            problems.add(f"{dockerfile.name} runs no `{w}`")
    if problems:
        return problems
    with tempfile.TemporaryDirectory(prefix="heart-image-context-") as tmp:
        ctx = pathlib.Path(tmp) / "build"
        ctx.mkdir()
        files = build_context(root, dockerignore, ctx)
        tops = sorted({f.split("/")[0] for f in files})
        print(f"  the context .dockerignore admits: {len(files)} files under {tops}")
        env = dict(os.environ, CARGO_TERM_COLOR="never", CARGO_INCREMENTAL="0", RUST_BACKTRACE="0", RUST_LIB_BACKTRACE="0")
        # The build stage: the debug profile instead of --release (so the warm CI target dir is
        # reused; the release build runs in the workflow's `docker build` job).
        for command in commands:
            if prepare_only and not command.startswith("cargo chef prepare"):
                continue
            args = [a for a in shlex.split(command) if a != "--release"]
            print(f"  $ {' '.join(args)}   (in the context copy)")
            run = subprocess.run(args, cwd=ctx, env=env, capture_output=True, text=True)
            if run.returncode != 0:
                output = (run.stderr or run.stdout).strip().splitlines()
                tail = "\n".join(line for line in output if "Compiling" not in line)[-3000:]
                problems.add(f"`{command}` fails on the context .dockerignore admits:\n{tail}")
                return problems
            if command.startswith("cargo chef prepare") and prepare_only:
                break
        ok("the Dockerfile's cargo commands succeed on exactly the context .dockerignore admits"
           + (" (prepare only)" if prepare_only else ""))
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["versions", "environments", "lbc-policy", "oidc", "cluster", "releases", "compose", "dashboards", "image"])
    parser.add_argument("root", type=pathlib.Path)
    parser.add_argument("--dockerignore", type=pathlib.Path)
    parser.add_argument("--dockerfile", type=pathlib.Path)
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args()
    root = args.root.resolve()
    try:
        if args.check == "image":
            problems = check_image(root, args.dockerignore or root / ".dockerignore",
                                   args.dockerfile or root / "docker/core-api.Dockerfile", args.prepare_only)
        else:
            problems = {"versions": check_versions, "environments": check_environments,
                        "lbc-policy": check_lbc_policy, "oidc": check_oidc,
                        "cluster": check_cluster, "releases": check_releases, "compose": check_compose,
                        "dashboards": check_dashboards}[args.check](root)
    except (OSError, KeyError, ValueError, StopIteration, yaml.YAMLError) as e:
        print(f"  FAIL {args.check}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
