"""Certificates and kubeconfigs of one sandbox: a CA, the apiserver's serving
certificate, one client certificate per identity, and the service-account key pair.

ECDSA P-256 keys are used throughout because they are generated in
milliseconds, which keeps `up` fast; kube-apiserver accepts them everywhere.
"""

import base64
import datetime
import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=3650)
SERVING_HOSTNAMES = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                     "kubernetes.default.svc.cluster.local"]
# 10.0.0.1 is the `kubernetes` Service's cluster IP in --service-cluster-ip-range=10.0.0.0/24;
# it is only named in the certificate, never dialled.
SERVING_IPS = ["127.0.0.1", "10.0.0.1"]


def _new_key():
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name, organisations=()):
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organisations]
    return x509.Name(attributes + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject, issuer, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY))


class CertificateAuthority:
    def __init__(self, directory):
        self.directory = Path(directory)
        self.cert_path = self.directory / "ca.crt"
        self.key_path = self.directory / "ca.key"
        self._key = _new_key()
        subject = _name("igw-sandbox-ca")
        self._cert = (_builder(subject, subject, self._key.public_key())
                      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                      .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                   content_commitment=False, key_encipherment=False,
                                                   data_encipherment=False, key_agreement=False,
                                                   encipher_only=False, decipher_only=False), critical=True)
                      .sign(self._key, hashes.SHA256()))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cert_path.write_bytes(_cert_pem(self._cert))
        _write_private(self.key_path, _key_pem(self._key))

    @property
    def cert_pem(self):
        return _cert_pem(self._cert)

    def issue(self, basename, common_name, organisations=(), server=False):
        """Write <basename>.crt/.key signed by this CA and return their paths."""
        key = _new_key()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (_builder(_name(common_name, organisations), self._cert.subject, key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if server:
            names = [x509.DNSName(h) for h in SERVING_HOSTNAMES]
            names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVING_IPS]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        cert_path, key_path = self.directory / f"{basename}.crt", self.directory / f"{basename}.key"
        cert_path.write_bytes(_cert_pem(cert))
        _write_private(key_path, _key_pem(key))
        return cert_path, key_path


def write_service_account_keys(directory):
    key = _new_key()
    private_path, public_path = Path(directory) / "sa.key", Path(directory) / "sa.pub"
    _write_private(private_path, _key_pem(key))
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def write_kubeconfig(path, server, ca_pem, cert_path, key_path, user, cluster):
    """A self-contained kubeconfig: certificates are embedded, not referenced."""

    def encoded(data):
        return base64.b64encode(data).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server,
                                                   "certificate-authority-data": encoded(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": encoded(Path(cert_path).read_bytes()),
                                          "client-key-data": encoded(Path(key_path).read_bytes())}}],
        "contexts": [{"name": f"{user}@{cluster}", "context": {"cluster": cluster, "user": user}}],
        "current-context": f"{user}@{cluster}",
    }
    _write_private(Path(path), yaml.safe_dump(config, sort_keys=False).encode())
    return Path(path)


def _write_private(path, data):
    path.write_bytes(data)
    path.chmod(0o600)
