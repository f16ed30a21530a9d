"""The dependency direction of plugins/, checked by parsing every import.

docs/architecture.md explains the layers; LAYERS is their table. A new module_utils file
must be entered here, in the lowest layer that holds everything it imports.
"""

import ast

import pytest

from support import REPO

PLUGINS = REPO / "plugins"
PREFIX = "ansible_collections.inference_gateway.migration.plugins."

FACTS, MECHANISMS, CONCERNS, PLANNING = range(4)

# module_utils file -> (layer, concern). Files of one concern may import each other; otherwise only
# mechanisms may import a file of their own layer, and nothing imports upwards.
LAYERS = {
    "api": (FACTS, "facts"),
    "errors": (FACTS, "facts"),
    "cluster": (MECHANISMS, "client"),
    "module": (MECHANISMS, "module runner"),
    "waiting": (MECHANISMS, "waiting"),
    "conditions": (MECHANISMS, "status conditions"),
    "objects": (MECHANISMS, "object readers"),
    "refs": (MECHANISMS, "backendRefs"),
    "epp": (MECHANISMS, "EPP flags"),
    "gke_version": (MECHANISMS, "GKE versions"),
    "releases": (MECHANISMS, "GIE releases"),
    "helm": (MECHANISMS, "Helm records"),
    "gateway_address": (MECHANISMS, "Gateway URL"),
    "backup_files": (MECHANISMS, "backup directory"),
    "managers": (MECHANISMS, "object managers"),
    "route_traffic": (MECHANISMS, "route traffic"),
    "reference_grants": (CONCERNS, "reference grants"),
    "preview_removal": (CONCERNS, "preview removal"),
    "ga_releases": (CONCERNS, "v1 releases"),
    "inventory": (CONCERNS, "detect"),
    "inventory_crds": (CONCERNS, "detect"),
    "inventory_warnings": (CONCERNS, "detect"),
    "inventory_routes": (CONCERNS, "detect"),
    "convert": (CONCERNS, "conversion"),
    "convert_models": (CONCERNS, "conversion"),
    "epp_manifests": (CONCERNS, "conversion"),
    "routes": (CONCERNS, "traffic split"),
    "route_writer": (CONCERNS, "traffic split"),
    "readiness": (CONCERNS, "readiness"),
    "crd_install": (CONCERNS, "CRD install"),
    "cleanup": (CONCERNS, "CRD cleanup"),
    "backup": (CONCERNS, "backup"),
    "restore": (CONCERNS, "restore"),
    "probe": (CONCERNS, "endpoint probe"),
    "permissions": (CONCERNS, "permissions"),
    "fleet": (CONCERNS, "reports"),
    "report": (CONCERNS, "reports"),
    "leftovers": (CONCERNS, "leftovers"),
    "detect_summary": (CONCERNS, "detect"),
    "plan": (PLANNING, "role planning"),
    "inputs": (PLANNING, "role planning"),
}


def imported_plugins(path):
    """Dotted names under plugins. that a file imports (``from x import y`` counts x.y when y is a module)."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + ["%s.%s" % (node.module, alias.name) for alias in node.names]
        else:
            continue
        found.update(name[len(PREFIX):] for name in names if name.startswith(PREFIX))
    return found


def module_utils_imports(path):
    """The module_utils files a file imports, whichever import form it uses."""
    return sorted(set(name.split(".")[1] for name in imported_plugins(path) if name.startswith("module_utils.")))


def module_utils_files():
    return sorted(p.stem for p in (PLUGINS / "module_utils").glob("*.py") if p.stem != "__init__")


def test_every_module_utils_file_has_a_layer():
    assert [name for name in module_utils_files() if name not in LAYERS] == []
    assert [name for name in LAYERS if name not in module_utils_files()] == []


@pytest.mark.parametrize("name", module_utils_files())
def test_module_utils_imports_only_lower_layers_or_its_own_concern(name):
    layer, concern = LAYERS[name]
    wrong = []
    for target in module_utils_imports(PLUGINS / "module_utils" / ("%s.py" % name)):
        target_layer, target_concern = LAYERS[target]
        if target_layer < layer or target_concern == concern or (target_layer == layer == MECHANISMS):
            continue
        wrong.append("%s (%s, layer %d) imports %s (%s, layer %d)"
                     % (name, concern, layer, target, target_concern, target_layer))
    assert wrong == []


@pytest.mark.parametrize("name", module_utils_files())
def test_module_utils_never_imports_modules_or_filters(name):
    upward = [n for n in imported_plugins(PLUGINS / "module_utils" / ("%s.py" % name))
              if n.partition(".")[0] != "module_utils"]
    assert upward == []


@pytest.mark.parametrize("path", sorted((PLUGINS / "modules").glob("*.py")) + sorted((PLUGINS / "filter").glob("*.py")),
                         ids=lambda p: "%s/%s" % (p.parent.name, p.name))
def test_modules_and_filters_build_only_on_utils(path):
    assert [n for n in imported_plugins(path) if n.partition(".")[0] not in ("module_utils", "plugin_utils")] == []


def test_the_checker_sees_a_sideways_import(tmp_path):
    sideways = tmp_path / "sideways.py"
    sideways.write_text("from %smodule_utils import api, inventory\n"
                        "from %smodule_utils.convert import v1_pool\n" % (PREFIX, PREFIX))
    assert module_utils_imports(sideways) == ["api", "convert", "inventory"]
