"""The built collection tarball installs and works without this checkout.

ansible-galaxy builds the tarball, installs it into an empty collections path,
and from a directory outside the repository (so the repo's ansible.cfg and
.collections link play no part) ansible-doc renders every module and a playbook
calls modules and filters by their FQCN.
"""

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("collection")
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", work, REPO],
                   check=True, capture_output=True, text=True, cwd=work)
    tarballs = list(work.glob("inference_gateway-migration-*.tar.gz"))
    assert len(tarballs) == 1
    collections = work / "collections"
    # kubernetes.core comes with the ansible package here; Galaxy is not reachable.
    # --force: a copy elsewhere on the default paths must not make the install a no-op.
    subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--no-deps", "--force", "-p", collections,
                    tarballs[0]],
                   check=True, capture_output=True, text=True, cwd=work)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_CONFIG=str(work / "none.cfg"),
               ANSIBLE_NOCOLOR="1", PATH="%s:%s" % (BIN, os.environ["PATH"]))
    return work, collections, env


def test_the_tarball_holds_the_collection_and_not_the_dev_files(installed):
    _work, collections, _env = installed
    root = collections / "ansible_collections" / "inference_gateway" / "migration"
    assert (root / "MANIFEST.json").exists()
    assert sorted(p.stem for p in (root / "plugins" / "modules").glob("*.py")) == MODULES
    assert not (root / ".venv").exists() and not (root / "tests" / "sandbox").exists()
    assert not (root / "reports").exists() and not (root / ".ansible").exists()


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_every_module(installed, module):
    work, _collections, env = installed
    shown = subprocess.run([BIN / "ansible-doc", "--json", "inference_gateway.migration." + module],
                           capture_output=True, text=True, cwd=work, env=env, check=False)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)["inference_gateway.migration." + module]
    assert doc["doc"]["short_description"] and doc["examples"].strip() and doc["return"]


class _Completions(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"choices": [{"text": "ok"}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_playbook_calls_the_installed_collection_by_fqcn(installed):
    work, _collections, env = installed
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Completions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        playbook = work / "fqcn.yml"
        playbook.write_text(yaml.safe_dump([{
            "hosts": "localhost", "gather_facts": False, "connection": "local",
            "tasks": [
                {"name": "probe a local endpoint", "register": "probe",
                 "inference_gateway.migration.endpoint_probe": {
                     "url": "http://127.0.0.1:%d/v1/completions" % server.server_address[1],
                     "model": "m", "requests": 3, "concurrency": 1}},
                {"name": "plan with a filter", "ansible.builtin.assert": {"that": [
                    "probe.ok == 3",
                    "[10, 50, 100] | inference_gateway.migration.pending_steps([]) == [10, 50, 100]"]}},
            ]}]))
        run = subprocess.run([BIN / "ansible-playbook", "-i", "localhost,", playbook,
                              "-e", "ansible_python_interpreter=%s" % (BIN / "python")],
                             capture_output=True, text=True, cwd=work, env=env, timeout=300, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "ok=2" in run.stdout
    finally:
        server.shutdown()
