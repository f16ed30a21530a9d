"""execution-environment.yml: ansible-builder accepts it and writes a build context that holds the collection.

`ansible-builder create` only writes the context (no container is built), offline:
every proxy points at a closed loopback port, so any download attempt would fail.
The definition is copied beside a freshly built collection tarball, where the
documented `ansible-galaxy collection build --output-path build/` puts it.
"""

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from igw_sandbox import versions

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / ".venv" / "bin"
DEFINITION = REPO / "execution-environment.yml"
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": "", "PIP_NO_INDEX": "1"}


def run(command, cwd):
    completed = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, **OFFLINE), check=False)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return completed


@pytest.fixture(scope="module")
def definition():
    return yaml.safe_load(DEFINITION.read_text())


@pytest.fixture(scope="module")
def context(definition, tmp_path_factory):
    work = tmp_path_factory.mktemp("ee")
    shutil.copy(DEFINITION, work / DEFINITION.name)
    for dependency in ("python", "system", "galaxy"):
        if isinstance(definition["dependencies"].get(dependency), str):
            shutil.copy(REPO / definition["dependencies"][dependency], work)
    run([BIN / "ansible-galaxy", "collection", "build", "--output-path", work / "build", REPO], cwd=work)
    run([BIN / "ansible-builder", "create", "-f", work / DEFINITION.name, "-c", work / "context",
         "--output-filename", "Containerfile"], cwd=work)
    return work / "context"


def galaxy_file():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    return "%s-%s-%s.tar.gz" % (galaxy["namespace"], galaxy["name"], galaxy["version"])


def stages(containerfile):
    """Stage name -> its lines."""
    result, current = {}, None
    for line in containerfile.splitlines():
        match = re.match(r"FROM \S+ AS (\w+)", line)
        if match:
            current = match.group(1)
        if current:
            result.setdefault(current, []).append(line)
    return result


def test_it_is_an_ansible_builder_v3_definition(definition):
    assert definition["version"] == 3
    assert definition["images"]["base_image"]["name"]
    assert set(definition["dependencies"]) >= {"ansible_core", "ansible_runner", "galaxy", "python", "system"}


def test_the_context_holds_the_built_collection_kubernetes_core_and_the_python_requirements(context):
    assert (context / "Containerfile").is_file()
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    names = [entry["name"] for entry in requirements]
    assert "kubernetes.core" in names
    (local,) = [entry for entry in requirements if entry.get("type") == "file"]
    # galaxy.yml's version names the tarball; the definition must follow it.
    assert Path(local["name"]).name == galaxy_file()
    tarball = context / "_build" / "collections" / galaxy_file()
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))["collection_info"]
        assert "plugins/module_utils/api.py" in archive.getnames()
    assert "%s.%s" % (manifest["namespace"], manifest["name"]) == "inference_gateway.migration"
    assert (context / "_build" / "requirements.txt").read_text().split() == (REPO / "requirements.txt").read_text().split()


def test_the_galaxy_stage_installs_the_tarball_from_where_the_context_puts_it(context):
    galaxy = stages((context / "Containerfile").read_text())["galaxy"]
    copy = galaxy.index("COPY _build /build")
    install = next(i for i, line in enumerate(galaxy) if "ansible-galaxy collection install" in line)
    assert copy < install
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    (local,) = [entry for entry in requirements if entry.get("type") == "file"]
    assert local["name"] == "/build/collections/" + galaxy_file()


def test_the_final_image_gets_the_helm_the_tests_run(context):
    final = "\n".join(stages((context / "Containerfile").read_text())["final"])
    assert "ARG HELM_VERSION=%s" % versions.HELM in final
    assert "sha256sum -c" in final and "install -m 0755 linux-${HELM_ARCH}/helm /usr/local/bin/helm" in final
