"""etcd's certificates: a CA of its own, etcd's serving/peer certificate and the API server's client
certificate, all for 127.0.0.1. etcd accepts only clients whose certificate that CA signed
(`--client-cert-auth`), so nothing else on the machine reads or writes the cluster's store.
Made once per cluster directory and kept across restarts.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "3650"


@dataclass(frozen=True, kw_only=True)
class EtcdTls:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # the API server's
    client_key: Path


def etcd_tls(pki: Path) -> EtcdTls:
    pki.mkdir(mode=0o700, exist_ok=True)
    root = pki / "etcd"
    root.mkdir(mode=0o700, exist_ok=True)
    ca = root / "ca"
    if not ca.with_suffix(".crt").is_file():
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            DAYS,
            "-subj",
            "/CN=kiosk-etcd-ca",
            "-keyout",
            ca.with_suffix(".key"),
            "-out",
            ca.with_suffix(".crt"),
        )
    _signed(ca, root / "server", "/CN=kiosk-etcd", "serverAuth,clientAuth")
    _signed(ca, root / "apiserver-client", "/CN=kube-apiserver-etcd-client", "clientAuth")
    return EtcdTls(
        ca=ca.with_suffix(".crt"),
        server_cert=root / "server.crt",
        server_key=root / "server.key",
        client_cert=root / "apiserver-client.crt",
        client_key=root / "apiserver-client.key",
    )


def _signed(ca: Path, stem: Path, subject: str, usage: str) -> None:
    if stem.with_suffix(".crt").is_file():
        return
    csr = stem.with_suffix(".csr")
    _openssl(
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        subject,
        "-keyout",
        stem.with_suffix(".key"),
        "-out",
        csr,
    )
    extensions = stem.with_suffix(".ext")
    extensions.write_text(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca.with_suffix(".crt"),
        "-CAkey",
        ca.with_suffix(".key"),
        "-CAcreateserial",
        "-days",
        DAYS,
        "-extfile",
        extensions,
        "-out",
        stem.with_suffix(".crt"),
    )
    csr.unlink()
    extensions.unlink()


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
