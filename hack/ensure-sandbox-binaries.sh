#!/usr/bin/env bash
# Build (first time, about 15 minutes on 2 cores) or find the sandbox binaries in the cache.
set -euo pipefail
cd "$(dirname "$0")/../tests/sandbox"
"$OLDPWD/.venv/bin/python" -m igw_sandbox.build > /dev/null
