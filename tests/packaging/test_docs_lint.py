"""The docs lint of the lint suite (hack/docs-lint.sh) really checks plugin docs.

On a scratch collection whose one module documents a reference to an option and a module that
do not exist, the script fails and names both, as it would for this collection's own docs.
"""

import os
import subprocess
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BROKEN_MODULE = textwrap.dedent('''\
    DOCUMENTATION = r"""
    module: probe
    short_description: A module whose docs are broken on purpose
    description:
      - Set O(missing_option) or call M(docs_lint.scratch.missing_module).
    author:
      - Inference Gateway migration maintainers
    options:
      name:
        description: A name.
        type: str
    """
    EXAMPLES = r"""
    - docs_lint.scratch.probe:
        name: x
    """
    RETURN = r"""
    """
    ''')


def test_docs_lint_fails_on_a_broken_reference_and_names_it(tmp_path):
    collection = tmp_path / "ansible_collections" / "docs_lint" / "scratch"
    (collection / "plugins" / "modules").mkdir(parents=True)
    (collection / "galaxy.yml").write_text(
        "namespace: docs_lint\nname: scratch\nversion: 1.0.0\nreadme: README.md\nauthors: [x]\n")
    (collection / "plugins" / "modules" / "probe.py").write_text(BROKEN_MODULE)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path), ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))
    linted = subprocess.run([REPO / "hack" / "docs-lint.sh", collection], capture_output=True, text=True,
                            env=env, check=False)
    assert linted.returncode != 0, linted.stdout
    assert "O(missing_option)" in linted.stdout + linted.stderr
    assert "docs_lint.scratch.missing_module" in linted.stdout + linted.stderr
