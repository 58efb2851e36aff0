"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.

The programs are built from the Go wrapper modules in ``k8s/controlplane/`` by ``.ci/controlplane.sh``
into a cache outside the clone. ``ControlPlane.start`` generates a PKI (cluster CA, serving
certificate, client certificates, service-account key pair), writes kubeconfigs, starts the four
programs on loopback ports chosen at run time, and waits (bounded) until each is ready; ``stop`` ends
them by PID in reverse order. No kubelet runs: pods are scheduled but never start.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kubernetes.dynamic import DynamicClient
from testkit import eventually, free_port, stop_process  # noqa: F401  (the kube suites import eventually from here)

ROOT = Path(__file__).resolve().parents[2]
WRAPPERS = ROOT / "k8s" / "controlplane"
PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
READY_TIMEOUT_S = 90.0  # 2 shared cores: the API server's first start (RBAC bootstrap) takes 5-30 s


def pinned_versions() -> tuple[str, str]:
    """(Kubernetes, etcd) versions the wrapper modules pin: the go.mod files are the one source."""
    kube = re.search(r"^require k8s\.io/kubernetes (v\S+)", (WRAPPERS / "kubernetes" / "go.mod").read_text(), re.M)
    etcd = re.search(r"go\.etcd\.io/etcd/server/v3 (v\S+)", (WRAPPERS / "etcd" / "go.mod").read_text())
    assert kube and etcd, "k8s/controlplane/*/go.mod no longer pin k8s.io/kubernetes and etcd server/v3"
    return kube.group(1), etcd.group(1)


def bin_dir() -> Path:
    """Where .ci/controlplane.sh puts the programs (``STRATUS_K8S_BIN`` or the version-keyed cache)."""
    if os.environ.get("STRATUS_K8S_BIN"):
        return Path(os.environ["STRATUS_K8S_BIN"])
    kube, etcd = pinned_versions()
    return Path.home() / ".cache" / "stratus-k8s" / f"{kube}-etcd-{etcd}"


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if not os.access(bin_dir() / p, os.X_OK)]


# --- PKI ------------------------------------------------------------------------------------------
def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _cert(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name, issuer_key: rsa.RSAPrivateKey, *,
          ca: bool = False, server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        ]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class ControlPlane:
    """The four programs, their files under ``workdir`` and the kubeconfigs tests connect with."""

    workdir: Path
    bin: Path = field(default_factory=bin_dir)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    logs: list[BinaryIO] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def kubeconfig(self, user: str = "admin") -> Path:
        """The kubeconfig of ``admin`` (system:masters) or a user made by ``add_user``."""
        return self.workdir / f"{user}.kubeconfig"

    # --- files --------------------------------------------------------------------------------
    def _write_pki(self) -> None:
        pki = self.workdir / "pki"
        pki.mkdir(parents=True)
        self._ca_key = _key()
        self._ca_name = _name("stratus-test-ca")
        ca = _cert(self._ca_name, self._ca_key, self._ca_name, self._ca_key, ca=True)
        (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        key = _key()
        serving = _cert(_name("kube-apiserver"), key, self._ca_name, self._ca_key, server=True)
        (pki / "apiserver.crt").write_bytes(serving.public_bytes(serialization.Encoding.PEM))
        (pki / "apiserver.key").write_bytes(_pem_key(key))
        (pki / "sa.key").write_bytes(_pem_key(_key()))

    def add_user(self, user: str, group: str | None = None) -> Path:
        """A client certificate for ``user`` (in ``group``) signed by the cluster CA, and its kubeconfig."""
        pki = self.workdir / "pki"
        key = _key()
        cert = _cert(_name(user, group), key, self._ca_name, self._ca_key)
        safe = user.replace(":", "-")
        (pki / f"{safe}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (pki / f"{safe}.key").write_bytes(_pem_key(key))
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.server,
                                                      "certificate-authority": str(pki / "ca.crt")}}],
            "users": [{"name": user, "user": {"client-certificate": str(pki / f"{safe}.crt"),
                                              "client-key": str(pki / f"{safe}.key")}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
        }
        path = self.kubeconfig(safe)
        path.write_text(yaml.safe_dump(cfg))
        return path

    # --- processes ----------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # closed by stop(), after the program exits
        self.logs.append(log)
        self.procs[name] = subprocess.Popen([str(self.bin / name), *args], stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def _wait(self, name: str, url: str, cert: tuple[Path, Path] | None = None) -> None:
        """Poll ``url`` until it answers 200 ``ok``; fail with the program's log tail after the timeout."""
        ctx = ssl.create_default_context(cafile=str(self.workdir / "pki" / "ca.crt"))
        if cert:
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        else:  # kube-controller-manager and kube-scheduler serve /healthz with a self-signed certificate
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        deadline, last = time.monotonic() + READY_TIMEOUT_S, ""
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, context=ctx if url.startswith("https") else None,
                                            timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.25)
        tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name} not ready at {url} within {READY_TIMEOUT_S:.0f} s "
                           f"(exit code {self.procs[name].poll()}, last error {last!r}); log tail:\n{tail}")

    def start(self) -> ControlPlane:
        t0 = time.monotonic()
        for p in ("etcd", "etcd_peer", "apiserver", "kcm", "scheduler"):
            self.ports[p] = free_port()
        self._write_pki()
        pki = self.workdir / "pki"
        etcd_url = f"http://127.0.0.1:{self.ports['etcd']}"
        self._spawn("etcd", [
            f"--data-dir={self.workdir / 'etcd'}", f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}", f"--listen-peer-urls=http://127.0.0.1:{self.ports['etcd_peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{self.ports['etcd_peer']}",
            f"--initial-cluster=default=http://127.0.0.1:{self.ports['etcd_peer']}",
            "--unsafe-no-fsync=true", "--log-level=warn",
        ])
        self._wait("etcd", f"{etcd_url}/health")
        self.timings["etcd_ready_s"] = time.monotonic() - t0
        self._spawn("kube-apiserver", [
            f"--etcd-servers={etcd_url}", f"--secure-port={self.ports['apiserver']}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--cert-dir={pki}", "--authorization-mode=RBAC",
            f"--client-ca-file={pki / 'ca.crt'}", f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.key'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true", "--endpoint-reconciler-type=none",
            "--kubelet-preferred-address-types=InternalIP", "--enable-priority-and-fairness=false",
        ])
        admin = self.add_user("admin", "system:masters")
        admin_cert = (pki / "admin.crt", pki / "admin.key")
        # Anonymous /readyz is refused until RBAC bootstrap is done: poll it as the admin.
        self._wait("kube-apiserver", f"{self.server}/readyz", admin_cert)
        self.timings["apiserver_ready_s"] = time.monotonic() - t0
        assert admin.exists()
        kcm = self.add_user("system:kube-controller-manager")
        sched = self.add_user("system:kube-scheduler")
        self._spawn("kube-controller-manager", [
            f"--kubeconfig={kcm}", f"--authentication-kubeconfig={kcm}", f"--authorization-kubeconfig={kcm}",
            "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            "--bind-address=127.0.0.1", f"--secure-port={self.ports['kcm']}",
        ])
        self._spawn("kube-scheduler", [
            f"--kubeconfig={sched}", f"--authentication-kubeconfig={sched}", f"--authorization-kubeconfig={sched}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={self.ports['scheduler']}",
        ])
        self._wait("kube-controller-manager", f"https://127.0.0.1:{self.ports['kcm']}/healthz")
        self._wait("kube-scheduler", f"https://127.0.0.1:{self.ports['scheduler']}/healthz")
        self.timings["all_ready_s"] = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """SIGTERM each program by PID, newest first; SIGKILL whatever has not exited after 15 s."""
        for proc in reversed(list(self.procs.values())):
            stop_process(proc)
        self.procs.clear()
        for log in self.logs:
            log.close()
        self.logs.clear()


def raw(admin: DynamicClient, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    """An object as the API server stores it, read with the admin's official client."""
    res = admin.resources.get(api_version=api_version, kind=kind)
    return dict(admin.get(res, name=name, namespace=namespace).to_dict())


