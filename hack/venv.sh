#!/usr/bin/env bash
# Create the project virtualenv once per requirements content, in the cache
# outside the repository, and point .venv at it. Reinstalling ansible takes
# minutes; a clean clone on a machine that has the cache reuses it in a second.
set -euo pipefail
python=$1 cache=$2 link=$3
key=$( (cat requirements.txt requirements/dev.txt; "$python" --version) | sha256sum | cut -c1-16)
target="$cache/venv-$key"
mkdir -p "$cache"
# Two checkouts on one machine may ask for the same virtualenv at once: one creates it, the other waits.
exec 9>"$target.lock"
flock 9
if [[ ! -f "$target/.complete" ]]; then
  echo "[venv] creating $target from requirements/dev.txt (first time on this machine, a few minutes)"
  rm -rf "$target"
  "$python" -m venv "$target"
  "$target/bin/pip" install --quiet --upgrade pip
  "$target/bin/pip" install --quiet -r requirements/dev.txt
  touch "$target/.complete"
fi
ln -sfn "$target" "$link"
touch "$link/bin/ansible-playbook"
echo "[venv] $link -> $target"
