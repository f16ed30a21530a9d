"""The inferencepool chart of every GIE release in versions.GIE_RELEASES, in an OCI registry.

Upstream publishes the chart with hack/push-chart.sh (`make inferencepool-helm-chart-push`):
for a release tag it sets `.inferenceExtension.image.tag` in values.yaml to the tag, then (from
v1.4, whose chart depends on the `epplib` library chart at `file://../epplib`) `helm dependency
update config/charts/inferencepool`, then
`helm package --version <tag> --app-version <tag> config/charts/inferencepool` and
`helm push` to `oci://<registry>/gateway-api-inference-extension/charts`. The same steps run
here with the sandbox's helm, into a registry storage directory in the binary cache keyed by
the release list, so the charts are pushed once per machine and every sandbox serves them
read-only.
"""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from . import build, processes, upstream, versions
from .waits import SandboxError, https_ok, wait_until

CHART = "inferencepool"
# The whole directory is copied: a chart's file:// dependencies (v1.4+: ../epplib) lie beside it.
CHARTS_DIRECTORY = "config/charts"
# The repository path under the registry host, as on registry.k8s.io.
REPOSITORY = "gateway-api-inference-extension/charts"
IMAGE_TAG_PATH = ("inferenceExtension", "image", "tag")
HELM_TIMEOUT = 120
REGISTRY_TIMEOUT = 60
# The registry's OpenTelemetry exporter would otherwise try an OTLP collector on localhost:4318.
REGISTRY_ENV = {"OTEL_TRACES_EXPORTER": "none"}
POPULATE = "registry-populate"


def set_image_tag(values_text, tag):
    """values.yaml with `.inferenceExtension.image.tag` set to `tag`, every other line as written.

    push-chart.sh does this with `yq -i`; a line edit keeps the file's comments and layout.
    """
    lines = values_text.splitlines(keepends=True)
    path = []  # (indent, key) of the mappings enclosing the current line
    for index, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z0-9_.-]+):(.*?)(\r?\n)?$", line)
        if not match or line.lstrip().startswith("#"):
            continue
        indent, key = len(match.group(1)), match.group(2)
        while path and path[-1][0] >= indent:
            path.pop()
        path.append((indent, key))
        if tuple(enclosing for unused_indent, enclosing in path) == IMAGE_TAG_PATH:
            lines[index] = f"{match.group(1)}{key}: {tag}{match.group(4) or ''}"
            edited = "".join(lines)
            if _image_tag(yaml.safe_load(edited)) != tag:
                raise SandboxError(f"could not set {'.'.join(IMAGE_TAG_PATH)} to {tag} by a line edit")
            return edited
    raise SandboxError(f"the chart's values.yaml has no {'.'.join(IMAGE_TAG_PATH)}")


def _image_tag(values):
    for key in IMAGE_TAG_PATH:
        values = (values or {}).get(key)
    return values


def charts_source(tag):
    return upstream.module_dir(upstream.INFERENCE_EXTENSION, tag) / CHARTS_DIRECTORY


def has_dependencies(chart):
    """Whether the chart's Chart.yaml lists dependencies (v1.4+: the epplib library chart)."""
    return bool(yaml.safe_load((Path(chart) / "Chart.yaml").read_text()).get("dependencies"))


def package(helm, tag, workdir, env):
    """The chart of release `tag` packaged as push-chart.sh packages it; returns the .tgz path."""
    charts = Path(workdir) / tag / "charts"
    shutil.copytree(charts_source(tag), charts)
    charts.chmod(0o755)
    for path in charts.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the module cache is read-only
    chart = charts / CHART
    values = chart / "values.yaml"
    values.write_text(set_image_tag(values.read_text(), tag))
    if has_dependencies(chart):
        # Only file:// dependencies: helm packs ../epplib into charts/ without any network.
        _helm(helm, ["dependency", "update", str(chart)], env)
    _helm(helm, ["package", "--version", tag, "--app-version", tag, str(chart), "-d", str(chart.parent.parent)], env)
    return chart.parent.parent / f"{CHART}-{tag}.tgz"


def _helm(helm, args, env):
    result = subprocess.run([str(helm), *args], env=env, capture_output=True, text=True, timeout=HELM_TIMEOUT,
                            check=False)
    if result.returncode != 0:
        raise SandboxError(f"helm {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def storage_dir(releases=versions.GIE_RELEASES):
    return build.cache_root() / f"registry-storage-{versions.DISTRIBUTION}" / f"charts-{'-'.join(releases)}"


def registry_config(storage, address, port, cert, key, read_only):
    return {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            # The storage is shared by every sandbox on the machine: nothing may change it
            # once populated.
            "maintenance": {"uploadpurging": {"enabled": False}, "readonly": {"enabled": read_only}},
            "delete": {"enabled": False},
        },
        "http": {"addr": f"{address}:{port}", "tls": {"certificate": str(cert), "key": str(key)}},
    }


def write_registry_config(path, **settings):
    Path(path).write_text(yaml.safe_dump(registry_config(**settings), sort_keys=False))
    return Path(path)


def chart_reference(host):
    return f"oci://{host}/{REPOSITORY}"


def registry_answers(host, ca_file):
    """Whether an OCI registry answers `GET /v2/` on https://host with a certificate from the CA."""
    return https_ok(f"https://{host}/v2/", ca_file)


def wait_for_registry(name, host, ca_file, state_dir):
    wait_until(f"the {name} to answer on https://{host}/v2/", lambda: registry_answers(host, ca_file),
               REGISTRY_TIMEOUT, log=processes.log_path(state_dir, name),
               alive=processes.exit_reporter(state_dir, name))


def populated_storage(registry, helm, state_dir, address, port, cert, key, ca_file, progress):
    """The registry storage holding every listed chart, pushed now when the cache lacks it.

    A registry of its own serves the storage while the charts are pushed, on `port`.
    """
    def populate(storage):
        storage.mkdir(parents=True)
        progress.say(f"pushing the inferencepool charts of {', '.join(versions.GIE_RELEASES)} into {storage} "
                     f"(first time on this machine only)")
        config = write_registry_config(Path(state_dir) / f"{POPULATE}.yaml", storage=storage, address=address,
                                       port=port, cert=cert, key=key, read_only=False)
        processes.start(POPULATE, [registry, "serve", config], state_dir, env=REGISTRY_ENV)
        try:
            wait_for_registry(POPULATE, f"{address}:{port}", ca_file, state_dir)
            with tempfile.TemporaryDirectory(prefix="igw-charts-") as workdir:
                env = _helm_env(workdir, ca_file)
                for tag in versions.GIE_RELEASES:
                    archive = package(helm, tag, workdir, env)
                    _helm(helm, ["push", str(archive), chart_reference(f"{address}:{port}")], env)
        finally:
            processes.stop_component(state_dir, POPULATE)

    return build.build_if_missing(storage_dir(), populate)


def _helm_env(workdir, ca_file):
    """A helm that keeps its files in `workdir` and trusts the sandbox CA (Go reads SSL_CERT_FILE)."""
    home = Path(workdir) / "helm"
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "SSL_CERT_FILE": str(ca_file),
            "HELM_CONFIG_HOME": str(home / "config"), "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"), "HELM_REGISTRY_CONFIG": str(home / "registry.json")}
