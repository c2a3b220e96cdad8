#!/usr/bin/env bash
# Commit a release to one environment's values file and push it (the release workflows' last step).
#
#   bash infra/cd/commit_release.sh ENVIRONMENT CHART TAG DIGEST
#
# Writes image.tag and image.digest of helm/CHART/values-ENVIRONMENT.yaml (only that file: a core
# release never touches the edge's files, nor the reverse) and pushes to the current branch,
# rebasing on a concurrent push (the other deployable's release) up to three times.
set -euo pipefail
env="$1" chart="$2" tag="$3" digest="$4"
file="helm/$chart/values-$env.yaml"
branch="${GITHUB_REF_NAME:?GITHUB_REF_NAME is not set}"

python3 infra/cd/set_image_tag.py "$file" "$tag" "$digest"
git config user.name "heart-cd"
git config user.email "heart-cd@users.noreply.github.com"
git add "$file"
if git diff --cached --quiet; then
  echo "$file already names $digest"
  exit 0
fi
# A commit pushed with GITHUB_TOKEN starts no workflow run, so this cannot loop.
git commit -m "release($env): $chart ${tag::12} ${digest::19}"
for attempt in 1 2 3; do
  git push origin "HEAD:$branch" && exit 0
  echo "push refused (attempt $attempt), rebasing on $branch"
  git pull --rebase origin "$branch"
done
exit 1
