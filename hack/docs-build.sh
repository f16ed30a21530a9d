#!/usr/bin/env bash
# Render the collection's documentation site into build/docs (HTML), offline, the way published
# collections do: `antsibull-docs sphinx-init` writes the Sphinx template and its build.sh, which
# generates the module, filter and role pages and runs sphinx-build. On top of the template:
# the root page (hack/docsite/index.rst), the offline settings and MyST (hack/docsite/conf.py),
# and README.md and docs/ copied in as pages of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
template=build/docsite
site=build/docs

rm -rf "$template" "$site"
mkdir -p build
# antsibull-docs wants its directories writable by their owner only.
mkdir -m 700 "$template"
antsibull-docs sphinx-init --use-current --fail-on-error --dest-dir "$template" \
  --index-rst-source hack/docsite/index.rst \
  --project inference_gateway.migration --copyright "Inference Gateway migration maintainers" \
  --title "inference_gateway.migration" \
  inference_gateway.migration > /dev/null
cat hack/docsite/conf.py >> "$template/conf.py"
python3 hack/docsite/copy_pages.py . "$template/rst"
"$template/build.sh"
mv "$template/build/html" "$site"
echo "[docs] $site/index.html"
