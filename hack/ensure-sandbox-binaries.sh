#!/usr/bin/env bash
# Build or find in the cache every sandbox binary, the endpoint pickers of versions.GIE_RELEASES included,
# so that parallel test workers never build them concurrently mid-test. The first time takes about half an
# hour on 2 cores (docs/sandbox.md, "Build time and disk use"); later runs find everything in seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/tests/sandbox"
"$root/.venv/bin/python" -m igw_sandbox.build > /dev/null
