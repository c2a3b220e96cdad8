#!/usr/bin/env bash
# Offline checks of everything that ships Heart to Heart: the Helm charts (rendered with every
# values file, linted, validated against the Kubernetes schemas of the pinned version and the kept
# upstream CRDs), Terraform, the Dockerfile, the GitHub workflows, the Argo CD and logging
# manifests, compose.yaml, and this script itself. Beyond "the files parse", they check that the
# deployment would work (infra/checks/deploy_checks.py): the core image's build stage on exactly
# the context .dockerignore admits, the CD role's OIDC trust against what the workflows send, the
# Kubernetes and add-on pins against infra/versions/supported-versions.yaml, the load balancer
# controller's policy against the upstream file, the default StorageClass and network policy,
# separate edge and core releases, the edge's OpenTelemetry export wired to the collector, and the
# Grafana dashboards' panels.
#
#   bash infra/check.sh               run every check; exit 1 if any fails
#   bash infra/check.sh --self-test   break a copy of the files on purpose and pass only if the
#                                     checks catch every breakage (proves they can fail)
#
# The tools come from PyPI into a venv under ${XDG_CACHE_HOME:-~/.cache}/heart-infra-venv (override
# with HEART_INFRA_VENV), made once and reused while infra/checks/requirements.txt is unchanged.
# No network is needed after that: no cluster, no registry, no cloud account. The image check
# needs cargo and cargo-chef (installed with `cargo install --locked` when missing) and builds in
# the debug profile into $CARGO_TARGET_DIR (default /var/tmp/heart-to-heart-target, the CI build's,
# so it is warm); the release build runs in CI's `docker build` job.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HEART_INFRA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/heart-infra-venv}"
requirements="$root/infra/checks/requirements.txt"
# Terraform providers are not downloadable here; a local filesystem mirror, where one exists, lets
# `terraform validate` run on the modules whose providers it holds.
tf_mirror="${HEART_TF_PLUGIN_MIRROR:-/opt/tf-plugins}"
cargo_chef_version=0.1.78
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/heart-to-heart-target}"
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0

step() { printf '\n==> %s\n' "$*"; }

ensure_venv() {
  if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$venv/.requirements.txt"; then
    return 0
  fi
  step "installing the check tools into $venv"
  python3 -m venv --clear "$venv" &&
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" &&
    cp "$requirements" "$venv/.requirements.txt"
}

# The Kubernetes version EKS runs (infra/versions/versions.yaml, the one place), so the schemas
# match the cluster.
kube_version() {
  local v
  v="$(sed -n 's/^kubernetes: *"\([0-9.]*\)".*/\1/p' "$1/infra/versions/versions.yaml")"
  [ -n "$v" ] || { echo "no kubernetes: in $1/infra/versions/versions.yaml" >&2; return 1; }
  echo "$v.0"
}

ensure_cargo_chef() {
  if ! cargo chef --version >/dev/null 2>&1; then
    step "installing cargo-chef $cargo_chef_version (the Dockerfile's version)"
    cargo install --locked cargo-chef --version "$cargo_chef_version" --quiet
  fi
}

# The Dockerfile's pinned cargo-chef is the one the check runs.
chef_version_matches() {
  grep -q "^ARG CARGO_CHEF_VERSION=$cargo_chef_version\$" "$1/docker/core-api.Dockerfile" ||
    { echo "docker/core-api.Dockerfile does not pin CARGO_CHEF_VERSION=$cargo_chef_version (infra/check.sh)" >&2; return 1; }
}

failed=()
passed=()
# check NAME COMMAND...: runs one check, records its verdict, never stops the run.
check() {
  local name="$1"
  shift
  step "$name"
  if "$@"; then
    passed+=("$name")
  else
    failed+=("$name")
    echo "FAILED: $name" >&2
  fi
}

yaml_lint() {
  # yamllint's ignore patterns are relative to where it runs.
  (cd "$1" && yamllint -c .yamllint --strict helm deploy .github infra .checkov.yaml .yamllint compose.yaml)
}

terraform_fmt() {
  # No CLI configuration is needed to format (and an absent one only makes noise).
  TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff "$1/infra/terraform"
}

# terraform validate for every module whose only provider is in the local mirror.
terraform_validate() {
  local src="$1" work rc=0 module providers
  work="$(mktemp -d)"
  cp -r "$src/infra/terraform/modules" "$work/"
  cat >"$work/terraformrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$tf_mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
EOF
  # (The environments and module platform need the helm, random and tls providers too.)
  for module in "$work"/modules/*/; do
    providers="$(grep -ho 'source *= *"[^"]*"' "$module"versions.tf | sed 's/.*"\(.*\)"/\1/' | sort -u)"
    for provider in $providers; do
      if [ ! -d "$tf_mirror/registry.terraform.io/$provider" ]; then
        echo "$(basename "$module"): not validated, provider $provider is not in $tf_mirror"
        continue 2
      fi
    done
    if (cd "$module" &&
      TF_CLI_CONFIG_FILE="$work/terraformrc" terraform init -backend=false -input=false -no-color >"$work/init.log" 2>&1 &&
      TF_CLI_CONFIG_FILE="$work/terraformrc" terraform validate -no-color >"$work/validate.log" 2>&1); then
      echo "$(basename "$module"): valid"
    else
      echo "$(basename "$module"): INVALID" >&2
      cat "$work/init.log" "$work/validate.log" >&2 2>/dev/null
      rc=1
    fi
  done
  echo "envs/* are covered by checkov and deploy_checks.py only: they need the helm, random and tls providers, which no allowed registry serves (docs/operations.md)"
  rm -rf "$work"
  return $rc
}

# run_checks SRC [--prepare-only]: every check over the tree at SRC (the repository, or the
# self-test's copy, which holds the deployment files only: the image check then takes the Rust
# sources from the repository and .dockerignore/Dockerfile from SRC, and runs `cargo chef prepare` only).
run_checks() {
  local src="$1" image_mode="${2:-}" scan kube
  kube="$(kube_version "$src")" || kube="unknown"
  # What checkov scans, gathered in one folder so one run covers it all with one report.
  scan="$(mktemp -d)"
  export PATH="$venv/bin:$PATH"

  check "yamllint" yaml_lint "$src"

  check "helm: render every chart with every values file, lint, validate against Kubernetes $kube and the kept CRDs" \
    python "$src/infra/checks/render_charts.py" --charts "$src/helm" --out "$scan/rendered" --kube-version "$kube"

  local deploy="$src/infra/checks/deploy_checks.py"
  check "versions: Kubernetes and add-ons from infra/versions/versions.yaml, within the supported-versions table" \
    python "$deploy" versions "$src"
  check "environments: every envs/* links the one root module, infra/terraform/shared/environment" \
    python "$deploy" environments "$src"
  check "load balancer controller IAM policy: the upstream file of the pinned release" python "$deploy" lbc-policy "$src"
  check "OIDC: the CD roles trust exactly the subjects the release workflows send" python "$deploy" oidc "$src"
  check "cluster: default gp3 StorageClass, vpc-cni network policy, RDS MySQL 8.4" python "$deploy" cluster "$src"
  check "releases: one workflow per deployable, path filters, promotion of the staging digest" python "$deploy" releases "$src"
  check "compose.yaml against the Compose Specification schema" python "$deploy" compose "$src"
  check "Grafana dashboards: JSON, unique panel ids, no overlapping panels" python "$deploy" dashboards "$src"

  check "hadolint docker/core-api.Dockerfile" hadolint "$src/docker/core-api.Dockerfile"
  check "cargo-chef version of the Dockerfile" chef_version_matches "$src"
  if [ "$image_mode" = "--prepare-only" ]; then
    check "image: cargo chef prepare on the context $src/.dockerignore admits" \
      python "$deploy" image "$root" --dockerignore "$src/.dockerignore" --dockerfile "$src/docker/core-api.Dockerfile" --prepare-only
  else
    check "image: the Dockerfile's cargo chef prepare/cook and cargo build -p heart-core (debug) on the context .dockerignore admits" \
      python "$deploy" image "$src"
  fi

  check "actionlint (with shellcheck on every run: script)" actionlint "$src"/.github/workflows/*.yml

  check "shellcheck infra/*.sh infra/cd/*.sh" shellcheck "$src"/infra/*.sh "$src"/infra/cd/*.sh

  mkdir -p "$scan/infra" "$scan/helm"
  # Each environment as Terraform sees it: its folder with its terraform.tfvars, the links to
  # the shared root module followed (-L). The shared folder itself is left out: on its own it has
  # no values (checkov would resolve the links to it and judge it with none), and nobody applies it.
  cp -rL "$src/infra/terraform" "$scan/infra/"
  rm -rf "$scan/infra/terraform/shared"
  cp -r "$src/deploy" "$src/.github" "$src/docker" "$scan/"
  for values in "$src"/helm/*/values*.yaml; do
    mkdir -p "$scan/helm/$(basename "$(dirname "$values")")"
    cp "$values" "$scan/helm/$(basename "$(dirname "$values")")/"
  done
  check "checkov: terraform, rendered manifests, Argo CD, Dockerfile, workflows; secrets in all and the values files" \
    checkov --config-file "$src/.checkov.yaml" -d "$scan" \
    --framework terraform kubernetes dockerfile github_actions secrets

  if command -v terraform >/dev/null; then
    check "terraform fmt" terraform_fmt "$src"
    if [ -d "$tf_mirror" ]; then
      check "terraform validate (modules whose providers are in $tf_mirror)" terraform_validate "$src"
    else
      step "terraform validate: skipped, no provider mirror at $tf_mirror (providers cannot be downloaded here); checkov covers Terraform"
    fi
  else
    step "terraform: not installed (not in Debian's or PyPI's packages); checkov covers Terraform"
  fi
  rm -rf "$scan"
}

summary() {
  printf '\n==> summary: %d passed, %d failed\n' "${#passed[@]}" "${#failed[@]}"
  local name
  for name in "${passed[@]}"; do echo "  ok    $name"; done
  for name in "${failed[@]}"; do echo "  FAIL  $name"; done
}

# Copies the checked files, breaks them in ways that different checks must catch, and passes only
# if every breakage is reported and the run as a whole fails. Each breakage is one of the faults
# the checks exist for (the five deployment blockers among them, and the edge's telemetry wiring),
# reintroduced on purpose.
self_test() {
  local copy log
  copy="$(mktemp -d)"
  log="$copy/checks.log"
  cp -r "$root/helm" "$root/infra" "$root/deploy" "$root/docker" "$root/.github" \
    "$root/.checkov.yaml" "$root/.yamllint" "$root/.dockerignore" "$root/compose.yaml" "$copy/"

  # 1. Schema: a field Deployments do not have.
  sed -i 's/^  revisionHistoryLimit:/  replicaz: 3\n  revisionHistoryLimit:/' "$copy/helm/heart-core/templates/deployment.yaml"
  # 2. Policy: a privileged container that may escalate.
  sed -i 's/privileged: false/privileged: true/; s/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/' \
    "$copy/helm/heart-core/templates/deployment.yaml"
  # 3. Terraform policy: the database reachable from the internet.
  sed -i 's/publicly_accessible    = false/publicly_accessible    = true/' "$copy/infra/terraform/modules/rds/main.tf"
  # 4. A credential in a values file (AWS's documented example key, split so this file holds none).
  printf 'extraConfig:\n  AWS_ACCESS_KEY_ID: %s%s\n' AKIA IOSFODNN7EXAMPLE >>"$copy/helm/heart-core/values-staging.yaml"
  # 5. Blocker 1: a workspace member left out of the image's build context.
  sed -i '/^!stack\/$/d' "$copy/.dockerignore"
  # 6. Blocker 2: the CD role trusting branch refs while the jobs declare environments.
  # shellcheck disable=SC2016 # ${e} is Terraform's, not the shell's
  sed -i 's/:environment:${e}/:ref:refs\/heads\/${e}/' "$copy/infra/terraform/modules/ecr/main.tf"
  # 7. Blocker 3: a Kubernetes version past its support (EKS 1.31).
  sed -i 's/^kubernetes: .*/kubernetes: "1.31"/' "$copy/infra/versions/versions.yaml"
  # 8. Blocker 4: the load balancer controller's policy edited by hand.
  sed -i '0,/"elasticloadbalancing:AddTags",/{s/"elasticloadbalancing:AddTags",//}' \
    "$copy/infra/terraform/modules/platform/policies/aws-load-balancer-controller-v3.5.0.json"
  # 9. Blocker 5: no default StorageClass; NetworkPolicy not enforced.
  sed -i 's/{"defaultStorageClass": {"enabled": true}}/{}/; s/{"enableNetworkPolicy": "true"}/{}/' \
    "$copy/infra/terraform/modules/eks/main.tf"
  # 10. A SpinApp field the pinned spin-operator's CRD does not have.
  sed -i 's/^  executor: /  lifecycle: {}\n  executor: /' "$copy/helm/heart-edge/templates/spinapp.yaml"
  # 11. The core's release touching the edge's chart.
  sed -i 's|      - "core-api/\*\*"|      - "core-api/**"\n      - "helm/heart-edge/**"|' "$copy/.github/workflows/release-core.yml"
  # 12. compose.yaml: a key the Compose Specification does not have, and an unpinned image.
  sed -i 's/^services:/servicez: {}\nservices:/; s|image: redis:[^ ]*|image: redis|' "$copy/compose.yaml"
  # 13. Dockerfile: an unpinned base image.
  # shellcheck disable=SC2016 # ${RUST_VERSION} is the Dockerfile's
  sed -i 's/^FROM rust:${RUST_VERSION}-slim-bookworm AS chef/FROM rust:latest AS chef/' "$copy/docker/core-api.Dockerfile"
  # 14. The production edge without Spin's OpenTelemetry export (its only telemetry under SpinKube).
  sed -i '/^  otel:/,/^    collector:/{s/enabled: true/enabled: false/}' "$copy/helm/heart-edge/values-production.yaml"
  # 15. The collector's pipeline naming a processor it does not define.
  sed -i 's/processors: \[memory_limiter, filter\/request-spans, batch\]/processors: [memory_limiter, filter\/spans, batch]/' \
    "$copy/helm/heart-platform/templates/otel-collector-config.yaml"
  # 16. Two dashboard panels with one id.
  sed -i '0,/"id": 2,/{s/"id": 2,/"id": 1,/}' "$copy/helm/heart-core/dashboards/heart-core.json"
  # 17. An alert rule field the pinned Prometheus Operator's PrometheusRule CRD does not have.
  sed -i 's/^          for: 10m$/          forr: 10m/' "$copy/helm/heart-edge/templates/prometheusrule.yaml"

  # 18. One environment forked from the shared root module (its main.tf a copy, not the link).
  cp --remove-destination "$root/infra/terraform/shared/environment/main.tf" "$copy/infra/terraform/envs/staging/main.tf"

  step "self-test: running the checks on a deliberately broken copy in $copy"
  run_checks "$copy" --prepare-only >"$log" 2>&1
  local expect missing=0
  for expect in "'replicaz' was unexpected" "CKV_K8S_16" "CKV_K8S_20" "CKV_AWS_17" "CKV_SECRET_2" \
    "failed to load manifest for workspace member" \
    "the workflows send sub=repo:heart-to-heart/heart-to-heart:environment:staging, the role trusts only" \
    "EKS 1.31: standard support ended" \
    "is not the upstream v3.5.0 policy" \
    "makes no default StorageClass" "enableNetworkPolicy is off" \
    "SpinApp heart-edge: spec: Additional properties are not allowed ('lifecycle' was unexpected)" \
    "release-core.yml touches helm/heart-edge" \
    "compose.yaml: (root): 'servicez' does not match any of the regexes" "redis image redis is not pinned" \
    "DL3007" \
    "SpinAppExecutor containerd-shim-spin exports no traces (deploymentConfig.otel.exporter_otlp_traces_endpoint unset)" \
    "collector: pipeline traces/spanmetrics uses processor filter/spans, which is not defined" \
    "helm/heart-core/dashboards/heart-core.json: panel 1 (Error rate): the id is not a unique integer" \
    "PrometheusRule heart-edge: spec.groups.0.rules.1: Additional properties are not allowed ('forr' was unexpected)" \
    "envs/staging/main.tf is not a link to ../../shared/environment/main.tf"; do
    if grep -qF "$expect" "$log"; then
      echo "  caught: $expect"
    else
      echo "  NOT caught: $expect" >&2
      missing=1
    fi
  done
  if [ "${#failed[@]}" -eq 0 ]; then
    echo "  the checks passed on a broken copy" >&2
    missing=1
  fi
  if [ "$missing" -ne 0 ]; then
    echo "self-test FAILED: the checks did not catch every breakage; their output:" >&2
    cat "$log" >&2
    rm -rf "$copy"
    return 1
  fi
  echo "self-test passed: the checks failed on the broken copy (${failed[*]})"
  rm -rf "$copy"
}

main() {
  local started=$SECONDS
  ensure_venv || { echo "could not install the check tools" >&2; exit 1; }
  ensure_cargo_chef || { echo "could not install cargo-chef" >&2; exit 1; }
  case "${1:-}" in
    --self-test)
      self_test
      local rc=$?
      echo "took $((SECONDS - started)) s"
      exit $rc
      ;;
    "")
      run_checks "$root"
      summary
      echo "took $((SECONDS - started)) s"
      [ "${#failed[@]}" -eq 0 ]
      ;;
    *)
      echo "usage: $0 [--self-test]" >&2
      exit 2
      ;;
  esac
}

main "$@"
