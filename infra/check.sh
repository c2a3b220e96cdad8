#!/usr/bin/env bash
# Offline checks of everything that ships Heart to Heart: the Helm charts (rendered with every
# values file, linted, validated against the Kubernetes schemas), Terraform, the Dockerfile, the
# GitHub workflows, the Argo CD and logging manifests, and this script itself.
#
#   bash infra/check.sh               run every check; exit 1 if any fails
#   bash infra/check.sh --self-test   break a copy of the files on purpose and pass only if the
#                                     checks catch every breakage (proves they can fail)
#
# The tools come from PyPI into a venv under ${XDG_CACHE_HOME:-~/.cache}/heart-infra-venv (override
# with HEART_INFRA_VENV), made once and reused while infra/checks/requirements.txt is unchanged.
# No network is needed after that: no cluster, no registry, no cloud account.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HEART_INFRA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/heart-infra-venv}"
requirements="$root/infra/checks/requirements.txt"
# Terraform providers are not downloadable here; a local filesystem mirror, where one exists, lets
# `terraform validate` run on the modules whose providers it holds.
tf_mirror="${HEART_TF_PLUGIN_MIRROR:-/opt/tf-plugins}"

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

# The Kubernetes version EKS runs (production's tfvars), so the schemas match the cluster.
kube_version() {
  local v
  v="$(sed -n 's/^kubernetes_version *= *"\([0-9.]*\)".*/\1/p' "$1/infra/terraform/envs/production/terraform.tfvars")"
  echo "${v:-1.31}.0"
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
  (cd "$1" && yamllint -c .yamllint --strict helm deploy .github infra .checkov.yaml .yamllint)
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
  echo "envs/* are covered by checkov only: they need the helm and random providers, which are not in the mirror"
  rm -rf "$work"
  return $rc
}

# run_checks SRC: every check over the tree at SRC (the repository, or the self-test's copy).
run_checks() {
  local src="$1" scan
  # What checkov scans, gathered in one folder so one run covers it all with one report.
  scan="$(mktemp -d)"
  export PATH="$venv/bin:$PATH"

  check "yamllint" yaml_lint "$src"

  check "helm: render every chart with every values file, lint, validate against Kubernetes $(kube_version "$src")" \
    python "$src/infra/checks/render_charts.py" --charts "$src/helm" --out "$scan/rendered" --kube-version "$(kube_version "$src")"

  check "hadolint docker/core-api.Dockerfile" hadolint "$src/docker/core-api.Dockerfile"

  check "actionlint (with shellcheck on every run: script)" actionlint "$src"/.github/workflows/*.yml

  check "shellcheck infra/*.sh" shellcheck "$src"/infra/*.sh

  mkdir -p "$scan/infra" "$scan/helm"
  cp -r "$src/infra/terraform" "$scan/infra/"
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
# if every breakage is reported and the run as a whole fails.
self_test() {
  local copy log
  copy="$(mktemp -d)"
  log="$copy/checks.log"
  cp -r "$root/helm" "$root/infra" "$root/deploy" "$root/docker" "$root/.github" \
    "$root/.checkov.yaml" "$root/.yamllint" "$copy/"

  # 1. Schema: a field Deployments do not have.
  sed -i 's/^  revisionHistoryLimit:/  replicaz: 3\n  revisionHistoryLimit:/' "$copy/helm/heart-core/templates/deployment.yaml"
  # 2. Policy: a privileged container that may escalate.
  sed -i 's/privileged: false/privileged: true/; s/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/' \
    "$copy/helm/heart-core/templates/deployment.yaml"
  # 3. Terraform policy: the database reachable from the internet.
  sed -i 's/publicly_accessible    = false/publicly_accessible    = true/' "$copy/infra/terraform/modules/rds/main.tf"

  # 4. A credential in a values file (AWS's documented example key, split so this file holds none).
  printf 'extraConfig:\n  AWS_ACCESS_KEY_ID: %s%s\n' AKIA IOSFODNN7EXAMPLE >>"$copy/helm/heart-core/values-staging.yaml"

  step "self-test: running the checks on a deliberately broken copy in $copy"
  run_checks "$copy" >"$log" 2>&1
  local expect missing=0
  for expect in "'replicaz' was unexpected" "CKV_K8S_16" "CKV_K8S_20" "CKV_AWS_17" "CKV_SECRET_2"; do
    if grep -q "$expect" "$log"; then
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
