"""A loopback mirror of the GIE release downloads, served over HTTPS.

GitHub serves every file of a tag under `<repo>/raw/<tag>/<path>` and every
release asset under `<repo>/releases/download/<tag>/<asset>`. The mirror serves
the same paths, so the collection reaches it by swapping only the host of its
download URL. Content comes from the Go module of each release in
versions.GIE_RELEASES; nothing is copied into the repository.

    python -m igw_sandbox.downloads --address A --port P --cert C --key K
"""

import argparse
import http.server
import ipaddress
import ssl
import sys

import yaml

from . import upstream, versions
from .waits import SandboxError

REPOSITORY_PATH = "/kubernetes-sigs/gateway-api-inference-extension"
CRD_DIRECTORY = "config/crd"
CRD_BASES = f"{CRD_DIRECTORY}/bases"
BUNDLE = "manifests.yaml"


def raw_path(tag, relative_path):
    return f"{REPOSITORY_PATH}/raw/{tag}/{relative_path}"


def release_asset_path(tag, asset):
    return f"{REPOSITORY_PATH}/releases/download/{tag}/{asset}"


def crd_files(module_dir):
    return sorted(p for p in (module_dir / CRD_BASES).glob("*.yaml"))


def assemble_bundle(module_dir):
    """What the release's `make artifacts` publishes as manifests.yaml.

    Upstream runs `kustomize build config/crd -o artifacts/manifests.yaml` (its
    `clean-manifests` call expands to nothing). That kustomization only lists
    resources, so the build is those documents in kustomize's legacy order, which
    for objects of one kind is by name. Each document is kept as written, minus
    controller-gen's leading `---`; kustomize would re-encode it (same objects).
    """
    kustomization_path = module_dir / CRD_DIRECTORY / "kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_path.read_text())
    transforming = sorted(key for key, value in kustomization.items() if key != "resources" and value)
    if transforming:
        raise SandboxError(f"{kustomization_path} uses {', '.join(transforming)}; the bundle assembly only "
                           f"reproduces a kustomization that lists resources")
    documents = []
    for resource in kustomization["resources"]:
        text = (module_dir / CRD_DIRECTORY / resource).read_text()
        body = text[len("---\n"):] if text.startswith("---\n") else text
        documents.append(body)
    documents.sort(key=lambda body: _sort_key(yaml.safe_load(body)))
    return "---\n".join(documents).encode()


def _sort_key(manifest):
    return manifest["apiVersion"], manifest["kind"], manifest["metadata"].get("namespace", ""), \
        manifest["metadata"]["name"]


def release_files(module_dir, tag):
    """URL path -> content for one release."""
    files = {raw_path(tag, f"{CRD_BASES}/{crd.name}"): crd.read_bytes() for crd in crd_files(module_dir)}
    files[release_asset_path(tag, BUNDLE)] = assemble_bundle(module_dir)
    return files


def mirror_files(releases=versions.GIE_RELEASES):
    files = {}
    for tag in releases:
        files.update(release_files(upstream.module_dir(upstream.INFERENCE_EXTENSION, tag), tag))
    return files


def _handler(files):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self._answer(with_body=True)

        def do_HEAD(self):
            self._answer(with_body=False)

        def _answer(self, with_body):
            body = files.get(self.path.split("?", 1)[0])
            status = 200 if body is not None else 404
            body = body if body is not None else b"Not Found\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

    return Handler


def https_server(address, port, cert, key, files):
    """An HTTPS server for `files` (URL path -> content), bound but not yet serving."""
    if not ipaddress.ip_address(address).is_loopback:
        raise SandboxError(f"the download mirror serves on loopback only, not on {address}")
    server = http.server.ThreadingHTTPServer((address, port), _handler(files))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def serve(address, port, cert, key, files):
    server = https_server(address, port, cert, key, files)
    print(f"serving {len(files)} files on https://{address}:{port}", flush=True)
    for path in sorted(files):
        print(f"  {path}", flush=True)
    server.serve_forever()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m igw_sandbox.downloads", description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    serve(args.address, args.port, args.cert, args.key, mirror_files())
    return 0


if __name__ == "__main__":
    sys.exit(main())
