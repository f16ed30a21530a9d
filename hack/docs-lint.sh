#!/usr/bin/env bash
# Lint the collection's documentation as the Ansible docsite does: the docs of every module,
# filter and role (schema, markup, references to this collection's plugins and options) and
# the extra docs in docs/docsite/. Exits non-zero on any error.
# Usage: hack/docs-lint.sh [COLLECTION_DIR] (default: this checkout, as ansible sees it)
set -euo pipefail
repository=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$repository/.venv/bin:$PATH" ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$repository/ansible.cfg}"
cd "${1:-$repository/.collections/ansible_collections/inference_gateway/migration}"
antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs .
echo "[docs-lint] module, filter, role and extra docs: no errors"
