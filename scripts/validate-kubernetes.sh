#!/usr/bin/env bash
# Validates the Kubernetes manifests against the schemas of one Kubernetes release, offline,
# with the PyPI package kubernetes-validate (installed in .venv by scripts/test.sh), in
# strict mode: an unknown or misspelt field is an error. Exits non-zero when any manifest
# fails (or when there are none).
#
#   scripts/validate-kubernetes.sh                 # deploy/kubernetes
#   scripts/validate-kubernetes.sh /tmp/manifests  # another folder
#
# kustomization.yaml is no Kubernetes resource (no schema): it is left out here, and
# crates/polyglot-host/tests/kubernetes.rs checks that it lists every other file.
set -euo pipefail
cd "$(dirname "$0")/.."

# 1.30: the oldest release on which the manifests run as they are (the preStop `sleep`
# action is on by default from it). Pinned, so that a new package release cannot change
# the verdict.
KUBERNETES_VERSION=1.30.0
dir=${1:-deploy/kubernetes}
validate=.venv/bin/kubernetes-validate
[ -x "$validate" ] || { echo "error: $validate is missing: run scripts/test.sh once, or .venv/bin/pip install kubernetes-validate" >&2; exit 1; }

mapfile -t manifests < <(find "$dir" -name '*.yaml' ! -name kustomization.yaml | sort)
[ "${#manifests[@]}" -gt 0 ] || { echo "error: no manifests in $dir" >&2; exit 1; }
"$validate" --strict --quiet -k "$KUBERNETES_VERSION" "${manifests[@]}"
echo "${#manifests[@]} manifests in $dir are valid for Kubernetes $KUBERNETES_VERSION"
