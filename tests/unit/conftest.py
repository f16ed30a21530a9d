"""Make the collection importable as ansible_collections.inference_gateway.migration.

Uses Ansible's own collection finder, as ansible-test units does, so that
kubernetes.core (installed with the ansible package) resolves too.
"""

from pathlib import Path

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".collections"

if not (COLLECTIONS / "ansible_collections" / "inference_gateway" / "migration").exists():
    raise RuntimeError("run `make venv` first: it links the collection into %s" % COLLECTIONS)

_AnsibleCollectionFinder(paths=[str(COLLECTIONS)])._install()
