"""deploy/: the service unit and the reverse-proxy config pass their own tools' checks."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_unit_is_hardened_and_restarts() -> None:
    unit = (DEPLOY / "chapter-node.service").read_text()
    for line in ("User=chapter-node", "NoNewPrivileges=true", "ProtectSystem=strict",
                 "StateDirectory=chapter-node", "Restart=on-failure", "PrivateTmp=true",
                 "CapabilityBoundingSet=", "--data-dir /var/lib/chapter-node"):
        assert line in unit, line


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    console_script = Path(sys.executable).parent / "chapter-node"
    if not console_script.exists():
        pytest.skip("chapter-node is not installed in this environment (make test installs it)")
    unit = (DEPLOY / "chapter-node.service").read_text().replace(
        "/opt/chapter-node/.venv/bin/chapter-node", str(console_script))
    path = tmp_path / "chapter-node.service"
    path.write_text(unit)
    result = subprocess.run([tool, "verify", str(path)], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "chapter-node.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paris.chapters.example.org")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "fullchain.crt", tmp_path / "privkey.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed on this machine")
    cert, key = _self_signed(tmp_path)
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/paris.chapters.example.org/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/paris.chapters.example.org/privkey.pem", str(key))
    site = site.replace("listen 80;", "listen 127.0.0.1:18080;").replace("listen [::]:80;", "")
    site = site.replace("listen 443 ssl http2;", "listen 127.0.0.1:18443 ssl http2;")
    site = site.replace("listen [::]:443 ssl http2;", "")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\n"
        f"events {{}}\nhttp {{\n access_log off;\n client_body_temp_path {tmp_path};\n"
        f" include {tmp_path}/site.conf;\n}}\n")
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_caddyfile_validates(tmp_path: Path) -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed on this machine")
    result = subprocess.run([caddy, "validate", "--adapter", "caddyfile", "--config",
                             str(DEPLOY / "Caddyfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
