"""Make the collection importable as ansible_collections.inference_gateway.migration, and the
shared test modules (support.py, memory_cluster.py) importable from every test below.

Uses Ansible's own collection finder, as ansible-test units does, so that
kubernetes.core (installed with the ansible package) resolves too.
"""

import sys
from pathlib import Path

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

HERE = Path(__file__).resolve().parent
# Explicit rather than left to pytest's rootdir handling, so the imports hold under any import mode.
sys.path.insert(0, str(HERE))

from support import REPO  # noqa: E402  (needs the line above)

COLLECTIONS = REPO / ".collections"

if not (COLLECTIONS / "ansible_collections" / "inference_gateway" / "migration").exists():
    raise RuntimeError("run `make venv` first: it links the collection into %s" % COLLECTIONS)

_AnsibleCollectionFinder(paths=[str(COLLECTIONS)])._install()
