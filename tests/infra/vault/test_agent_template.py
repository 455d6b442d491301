"""The Vault Agent Injector's template (kubernetes/components/vault-agent) rendered by a real agent (`bao agent`,
the same template engine) from a real OpenBao dev server, then sourced by /bin/sh as the container's command does:
secret values holding quotes, `$(...)`, backquotes and `;` arrive intact and run nothing."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from app.config import PROJECT_ROOT
from tests.infra.vault import helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMPONENT = PROJECT_ROOT / "kubernetes" / "components" / "vault-agent"
ANNOTATION = "vault.hashicorp.com/agent-inject-template-credit-score.env"
ESCAPE = r''' | replaceAll "'" "'\\''"'''  # what the template applies to each value
ENV_NAMES = {"admin_token": "CREDIT_SCORE_ADMIN_TOKEN", "feedback_token": "CREDIT_SCORE_FEEDBACK_TOKEN",
             "database_url": "CREDIT_SCORE_DATABASE_URL", "mlflow_username": "MLFLOW_TRACKING_USERNAME",
             "mlflow_password": "MLFLOW_TRACKING_PASSWORD"}


def templates() -> dict[str, str]:
    out = {}
    for path in sorted(COMPONENT.glob("inject-*.yaml")):
        doc = yaml.safe_load(path.read_text())
        tpl = doc["spec"].get("jobTemplate", {}).get("spec", doc["spec"])["template"]
        out[path.name] = tpl["metadata"]["annotations"][ANNOTATION]
    return out


def render_with_agent(server: h.BaoServer, template: str, workdir) -> str:
    role_id, secret_id = h.approle_credentials(server)
    (workdir / "role-id").write_text(role_id)
    (workdir / "secret-id").write_text(secret_id)
    (workdir / "credit-score.env.ctmpl").write_text(template)
    out = workdir / "credit-score.env"
    (workdir / "agent.hcl").write_text(f"""
vault {{ address = "{server.addr}" }}
auto_auth {{
  method "approle" {{
    config = {{
      role_id_file_path = "{workdir / 'role-id'}"
      secret_id_file_path = "{workdir / 'secret-id'}"
      remove_secret_id_file_after_reading = false
    }}
  }}
}}
exit_after_auth = true
template_config {{ exit_on_retry_failure = true }}
template {{
  source = "{workdir / 'credit-score.env.ctmpl'}"
  destination = "{out}"
  perms = "0400"
  error_on_missing_key = true
}}
""")
    proc = subprocess.run([h.real_bao_binary(), "agent", f"-config={workdir / 'agent.hcl'}"], capture_output=True,
                          text=True, timeout=60, cwd=workdir)
    with open(workdir / "agent.log", "w") as f:  # searched for leaks with the other logs
        f.write(proc.stdout + proc.stderr)
    assert proc.returncode == 0 and out.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return out.read_text()


@pytest.mark.parametrize("name", sorted(templates()))
def test_the_agent_template_escapes_every_value_for_the_shell(bao_factory, tmp_path, name):
    server = bao_factory("agent")
    h.run_setup(server.addr, server.root_token, server.workdir / "setup.log")
    values = {
        "admin_token": h.remember("adm'in-" + h.fresh("t") + "$(touch pwned-1)"),
        "feedback_token": h.remember("fb`touch pwned-2`'\"" + h.fresh("t")),
        "database_url": h.remember(f"postgresql://cs:p'w;touch pwned-3;'@db:5432/x?a=1&b={h.fresh('d')}"),
        "mlflow_username": "ml flow $HOME",
        "mlflow_password": h.remember("'; touch pwned-4; echo '" + h.fresh("p") + "\\'"),
    }
    h.put_app_values(server, values)
    rendered = render_with_agent(server, templates()[name], tmp_path)
    assert rendered.count("export ") == 5
    proc = subprocess.run(["/bin/sh", "-c", f". {tmp_path / 'credit-score.env'} && exec python3 -c "
                           "'import json, os; print(json.dumps(dict(os.environ)))'"],
                          capture_output=True, text=True, timeout=10, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)
    for key, var in ENV_NAMES.items():
        assert env[var] == values[key], var
    assert not list(tmp_path.glob("pwned-*")), "a secret value ran as a command"
    # and the escaping is what makes it so: the same template without it breaks or runs a value
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain = templates()[name].replace(ESCAPE, "")
    assert "replaceAll" not in plain
    render_with_agent(server, plain, plain_dir)
    bad = subprocess.run(["/bin/sh", "-c", f". {plain_dir / 'credit-score.env'} && env"], capture_output=True,
                         text=True, timeout=10, cwd=plain_dir, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert bad.returncode != 0 or list(plain_dir.glob("pwned-*")), bad.stdout[-500:]
