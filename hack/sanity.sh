#!/usr/bin/env bash
# ansible-test needs the collection at .../ansible_collections/<ns>/<name> inside
# a git work tree: copy the files git knows (tracked and new) there and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/inference_gateway/migration"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [[ -e "$f" ]] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$dest"
git -C "$dest" init -q && git -C "$dest" add -A
# Collections this one depends on must sit beside it; kubernetes.core comes with the ansible package.
kubernetes_core="$("$root/.venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')/ansible_collections/kubernetes/core"
mkdir -p "$work/ansible_collections/kubernetes"
ln -s "$kubernetes_core" "$work/ansible_collections/kubernetes/core"

# ansible-test bootstraps pip in its virtualenvs from a script it downloads from
# a host this machine cannot reach; this stand-in installs the same pip from the
# package index instead.
getpip="$HOME/.ansible/test/cache/get_pip_24_2.py"
if [[ ! -f "$getpip" ]]; then
  mkdir -p "$(dirname "$getpip")"
  cat > "$getpip" <<'PY'
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "pip==24.2"])
PY
fi
if ! command -v shellcheck > /dev/null; then
  echo "[sanity] installing shellcheck (the shellcheck sanity test needs it)"
  apt-get update -qq > /dev/null && apt-get install -y -qq shellcheck > /dev/null
fi
cd "$dest"
"$root/.venv/bin/ansible-test" sanity --local --python 3.11 --requirements --color no "$@"
