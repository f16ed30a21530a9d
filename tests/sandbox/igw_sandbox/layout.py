"""Where a sandbox keeps its state: <repo>/.sandbox/<name>/."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
STATE_ROOT = REPO_ROOT / ".sandbox"


def state_root():
    # The integration workers and molecule start side by side on a fresh clone: whoever comes
    # second finds the directory made, which is no error.
    STATE_ROOT.mkdir(exist_ok=True)
    ignore = STATE_ROOT / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return STATE_ROOT


class Layout:
    def __init__(self, name):
        self.name = name
        self.root = STATE_ROOT / name
        self.pki = self.root / "pki"
        self.ca_cert = self.pki / "ca.crt"
        self.kubeconfigs = self.root / "kubeconfigs"
        self.admin_kubeconfig = self.root / "kubeconfig"
        self.restricted_kubeconfig = self.root / "restricted.kubeconfig"
        self.etcd_data = self.root / "etcd-data"
        self.logs = self.root / "logs"
        self.helm_home = self.root / "helm"
        self.kube_cache = self.root / "kube-cache"
        self.info = self.root / "sandbox.json"
        self.baseline = self.root / "baseline.json"
        self.address = self.root / "address"
        self.env_file = self.root / "env"
        self.gateway_ready = self.root / "gateway.ready"
        self.registry_config = self.root / "registry.yaml"

    def log(self, component):
        return self.logs / f"{component}.log"

    def run_state(self):
        """Everything a fresh `up` recreates: not the address allocation, nor the logs (rotated instead)."""
        return [self.pki, self.kubeconfigs, self.admin_kubeconfig, self.restricted_kubeconfig, self.etcd_data,
                self.helm_home, self.kube_cache, self.info, self.baseline, self.env_file, self.gateway_ready,
                self.registry_config, self.root / "pids"]
