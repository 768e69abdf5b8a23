#!/usr/bin/env bash
# Validate deploy/ against published schemas, offline after the first run (no Docker engine, no cluster):
#   - deploy/docker-compose.yml against the Compose Specification (check-jsonschema vendors it),
#   - every manifest in deploy/k8s against the Kubernetes OpenAPI schemas (kubernetes-validate bundles
#     them; strict: unknown fields are errors), and the Kustomization's resources exist,
#   - the Grafana dashboard and datasource/dashboard provisioning parse (no published schema),
#   - the Prometheus configuration and alerting rules with promtool, and the rules' unit tests
#     (promtool comes from Debian's prometheus package, installed when missing and possible).
# The Python tools live in a venv under /var/tmp, created once per tool version. If pip cannot install
# them (no network, no python3-venv), the script says so and exits 0 without validating, unless
# VALIDATE_DEPLOY_REQUIRED=1. Before validating, it checks that each validator rejects a broken file.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK_JSONSCHEMA_VERSION=0.39.0
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBERNETES_VERSION=1.33.0
VENV="${VALIDATE_DEPLOY_VENV:-/var/tmp/integrations-deploy-venv-${CHECK_JSONSCHEMA_VERSION}-${KUBERNETES_VALIDATE_VERSION}}"

skip() {
  if [[ "${VALIDATE_DEPLOY_REQUIRED:-0}" == 1 ]]; then
    echo "validate-deploy: $1" >&2
    exit 1
  fi
  echo "validate-deploy: SKIPPED, $1" >&2
  exit 0
}

if [[ ! -x "$VENV/bin/check-jsonschema" || ! -x "$VENV/bin/kubernetes-validate" ]]; then
  command -v python3 >/dev/null || skip "python3 is not installed"
  rm -rf "$VENV.tmp"
  python3 -m venv "$VENV.tmp" >/dev/null 2>&1 || skip "python3 -m venv failed (install python3-venv)"
  if ! "$VENV.tmp/bin/pip" install --quiet --disable-pip-version-check \
    "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2; then
    rm -rf "$VENV.tmp"
    skip "pip could not install check-jsonschema and kubernetes-validate"
  fi
  rm -rf "$VENV"
  mv "$VENV.tmp" "$VENV"
  # The venv's scripts name their interpreter by absolute path: recreate it if moved.
  if ! "$VENV/bin/check-jsonschema" --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    python3 -m venv "$VENV" >/dev/null
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
  fi
fi
export PATH="$VENV/bin:$PATH"

compose() { check-jsonschema --builtin-schema vendor.compose-spec "$@"; }
kube() { kubernetes-validate --strict --quiet --kubernetes-version "$KUBERNETES_VERSION" "$@"; }

# The validators must reject what is wrong, or a pass means nothing.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
printf 'services:\n  api:\n    image: x\n    restart: sometimes\n    portz: ["8080"]\n' >"$scratch/compose.yml"
if compose "$scratch/compose.yml" >/dev/null 2>&1; then
  echo "validate-deploy: check-jsonschema accepted a broken compose file" >&2
  exit 1
fi
printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n        - name: x\n          image: x\n          imagePullPolicy: Always\n          ports: [{containerPort: "http"}]\n          livenessProbe: {httpGet: {path: /healthz, port: 8080}, periodSecond: 5}\n' >"$scratch/deployment.yaml"
if kube "$scratch/deployment.yaml" >/dev/null 2>&1; then
  echo "validate-deploy: kubernetes-validate accepted a broken manifest" >&2
  exit 1
fi

echo "== compose: deploy/docker-compose.yml (compose-spec)"
compose deploy/docker-compose.yml

echo "== kubernetes $KUBERNETES_VERSION (strict): deploy/k8s"
manifests=()
for file in deploy/k8s/*.yaml; do
  # Kustomize's own file has no Kubernetes schema: checked below.
  grep -q '^kind: Kustomization' "$file" || manifests+=("$file")
done
kube "${manifests[@]}"
echo "ok -- ${#manifests[@]} manifests"

echo "== kustomization resources, Grafana and Prometheus files parse"
"$VENV/bin/python" - <<'PY'
import json, pathlib, sys, yaml

errors = []
k8s = pathlib.Path("deploy/k8s")
kustomization = yaml.safe_load((k8s / "kustomization.yaml").read_text())
listed = set(kustomization.get("resources", []))
for name in sorted(listed):
    if not (k8s / name).is_file():
        errors.append(f"kustomization.yaml lists {name}, which does not exist")
for path in sorted(k8s.glob("*.yaml")):
    if path.name != "kustomization.yaml" and path.name not in listed:
        errors.append(f"{path} is not listed in kustomization.yaml")
for path in sorted(pathlib.Path("deploy/grafana").rglob("*.json")):
    try:
        dashboard = json.loads(path.read_text())
        if not dashboard.get("panels"):
            errors.append(f"{path}: no panels")
    except ValueError as e:
        errors.append(f"{path}: {e}")
for path in sorted(pathlib.Path("deploy").rglob("*.y*ml")):
    if "k8s" not in path.parts:
        try:
            list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as e:
            errors.append(f"{path}: {e}")
for error in errors:
    print(error, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
echo "== Prometheus: configuration, alerting rules and their unit tests (promtool)"
if ! command -v promtool >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  # Debian's prometheus package carries promtool (it is not started here).
  apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 || true
fi
if command -v promtool >/dev/null; then
  promtool check config deploy/prometheus/prometheus.yml
  promtool test rules deploy/prometheus/alerts.test.yml
elif [[ "${VALIDATE_DEPLOY_REQUIRED:-0}" == 1 ]]; then
  echo "validate-deploy: promtool is not installed (Debian: apt-get install prometheus)" >&2
  exit 1
else
  echo "validate-deploy: promtool SKIPPED, not installed (Debian: apt-get install prometheus)" >&2
fi
echo "ok -- deploy/ is valid"
