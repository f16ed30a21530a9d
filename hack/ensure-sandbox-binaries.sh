#!/usr/bin/env bash
# Build (first time, about 15 minutes on 2 cores) or find the sandbox binaries in the cache.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/tests/sandbox"
"$root/.venv/bin/python" -m igw_sandbox.build > /dev/null
