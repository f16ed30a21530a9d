"""The loopback mirrors of what the collection's defaults download from the internet.

- `downloads`: GitHub's release download paths of gateway-api-inference-extension
  (downloads.py), an HTTPS server in Python.
- `registry`: registry.k8s.io's chart repository (charts.py), the CNCF distribution
  registry serving a storage directory from the binary cache, read-only.

Both listen on 127.0.0.1 with a certificate from the sandbox CA. The env file exports
their base URLs and SSL_CERT_FILE (the CA), which helm (Go) and Python's default SSL
context both honour, so nothing needs an insecure flag.
"""

import os
import sys
from pathlib import Path

from . import charts, downloads, processes, versions
from .waits import https_ok, wait_until

LOOPBACK = "127.0.0.1"
DOWNLOADS = "downloads"
REGISTRY = "registry"
COMPONENTS = (DOWNLOADS, REGISTRY)
# One port each, allocated with the control plane's (controlplane.free_ports).
PORT_NAMES = COMPONENTS
DOWNLOADS_TIMEOUT = 120  # the first start on a machine fetches each release's module
SANDBOX_PYTHONPATH = Path(__file__).resolve().parent.parent


def host(ports, component):
    return f"{LOOPBACK}:{ports[component]}"


def env(layout, ports):
    """What the env file exports about the mirrors."""
    return {
        "GIE_DOWNLOAD_URL": f"https://{host(ports, DOWNLOADS)}{downloads.REPOSITORY_PATH}",
        "GIE_CHART_REGISTRY": charts.chart_reference(host(ports, REGISTRY)),
        "SSL_CERT_FILE": str(layout.ca_cert),
    }


def start(layout, ca, ports, binaries, progress):
    """Start both mirrors (pushing the charts first if the cache lacks them); return a function
    that waits until both answer."""
    cert, key = ca.issue("mirrors", "igw-sandbox-mirrors", server=True)
    storage = charts.populated_storage(binaries["registry"], binaries["helm"], layout.root, LOOPBACK,
                                       ports[REGISTRY], cert, key, layout.ca_cert, progress)
    progress.say(f"starting the download mirror on {host(ports, DOWNLOADS)} (log: {layout.log(DOWNLOADS)})")
    python_path = os.pathsep.join(filter(None, [str(SANDBOX_PYTHONPATH), os.environ.get("PYTHONPATH")]))
    processes.start(DOWNLOADS, [sys.executable, "-m", "igw_sandbox.downloads", "--address", LOOPBACK,
                                "--port", ports[DOWNLOADS], "--cert", cert, "--key", key],
                    layout.root, env={"PYTHONPATH": python_path})
    progress.say(f"starting the chart registry on {host(ports, REGISTRY)} serving {storage} "
                 f"(log: {layout.log(REGISTRY)})")
    config = charts.write_registry_config(layout.registry_config, storage=storage, address=LOOPBACK,
                                          port=ports[REGISTRY], cert=cert, key=key, read_only=True)
    processes.start(REGISTRY, [binaries["registry"], "serve", config], layout.root, env=charts.REGISTRY_ENV)

    def wait():
        progress.say("waiting for the download mirror and the chart registry")
        wait_until(f"the download mirror to serve {_probe_url(ports)}", lambda: _downloads_answer(layout, ports),
                   DOWNLOADS_TIMEOUT, log=layout.log(DOWNLOADS), alive=processes.exit_reporter(layout.root, DOWNLOADS))
        charts.wait_for_registry(REGISTRY, host(ports, REGISTRY), layout.ca_cert, layout.root)

    return wait


def _probe_url(ports):
    tag = versions.GIE_RELEASES[0]
    return f"https://{host(ports, DOWNLOADS)}{downloads.release_asset_path(tag, downloads.BUNDLE)}"


def _downloads_answer(layout, ports):
    return https_ok(_probe_url(ports), layout.ca_cert)


def healthy(layout, ports):
    if not all(processes.recorded_pid(layout.root, c) for c in COMPONENTS):
        return False
    if not all(name in ports for name in PORT_NAMES):
        return False
    return _downloads_answer(layout, ports) and charts.registry_answers(host(ports, REGISTRY), layout.ca_cert)
