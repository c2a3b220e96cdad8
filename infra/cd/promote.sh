#!/usr/bin/env bash
# Copy one image (or OCI artifact: the edge's Spin app) by digest, and prove the copy has the same
# digest (the release workflows' production step). No rebuild: production runs what staging ran.
#
#   bash infra/cd/promote.sh SOURCE_REPO@sha256:DIGEST TARGET_REPO:TAG
#
# Registry logins come from the caller (amazon-ecr-login writes docker's config, which crane reads).
set -euo pipefail
source_ref="$1" target_ref="$2"
digest="${source_ref##*@}"
crane_version=v0.20.2

if ! command -v crane >/dev/null; then
  GOBIN="$HOME/.local/bin" go install "github.com/google/go-containerregistry/cmd/crane@$crane_version"
  export PATH="$HOME/.local/bin:$PATH"
fi
# Tags are immutable: a re-run finds the tag already naming this digest and copies nothing.
if [ "$(crane digest "$target_ref" 2>/dev/null || true)" != "$digest" ]; then
  crane copy "$source_ref" "$target_ref"
fi
copied="$(crane digest "$target_ref")"
if [ "$copied" != "$digest" ]; then
  echo "the copy is $copied, not the tested $digest" >&2
  exit 1
fi
echo "promoted $digest to $target_ref"
