"""The roles' configuration files that only real hosts use, rendered by Ansible from the roles' templates and
checked by their own tools: nginx's site in system mode (Debian's nginx.conf includes conf.d/*.conf) with
`nginx -t`, the systemd unit with `systemd-analyze verify`, the nftables rules with `nft -c`, the Vault server
configuration derived from vault/config/server.hcl."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.infra.ansible.conftest import ANSIBLE_DIR, ansible_env, tool

pytestmark = pytest.mark.integration


def render(tmp_path, role: str, templates: dict[str, str], extra: dict) -> dict:
    """Render role templates (name -> file name under tmp_path/out) with the role's defaults and vars."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    role_dir = ANSIBLE_DIR / "roles" / role
    files = [str(role_dir / "defaults" / "main.yml")]
    if (role_dir / "vars" / "main.yml").exists():
        files.append(str(role_dir / "vars" / "main.yml"))
    play = [{"name": "Render", "hosts": "localhost", "gather_facts": False, "vars_files": files,
             "tasks": [{"name": f"Render {src}", "ansible.builtin.template": {
                 "src": str(role_dir / "templates" / src), "dest": str(out / dest), "mode": "0644"}}
                       for src, dest in templates.items()]}]
    (tmp_path / "render.yml").write_text(yaml.safe_dump(play))
    (tmp_path / "extra.yml").write_text(yaml.safe_dump(extra))
    env = ansible_env(tmp_path)
    res = subprocess.run([tool("ansible-playbook"), "-i", "localhost,", "-c", "local", str(tmp_path / "render.yml"),
                          "-e", f"@{tmp_path / 'extra.yml'}", "-e", f"ansible_python_interpreter={sys.executable}"],
                         cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return {dest: (out / dest) for dest in templates.values()}


def test_nginx_site_in_system_mode_passes_nginx_t(tmp_path):
    nginx = tool("nginx", "/usr/sbin/nginx")
    conf_d = tmp_path / "out" / "conf.d"
    conf_d.mkdir(parents=True)
    render(tmp_path, "mlops_app", {"site.conf.j2": "conf.d/credit-score.conf",
                                    "upstream.conf.j2": "conf.d/credit-score-upstream.inc"},
           {"mlops_app_version": "1.4.2", "mlops_app_process_manager": "systemd",
            "mlops_app_nginx_system_conf_dir": str(conf_d), "mlops_app__nginx_log_dir": str(tmp_path),
            "mlops_app__switch_to": "green", "mlops_app__releases": {"blue": "1.4.1", "green": "1.4.2"}})
    upstream = (conf_d / "credit-score-upstream.inc").read_text()
    assert "server 127.0.0.1:8002 max_fails" in upstream and "server 127.0.0.1:8001 backup" in upstream
    # Debian's nginx.conf includes conf.d/*.conf inside http {}: the switch file must not be included twice
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
                    f"http {{\n  include {conf_d}/*.conf;\n}}\n")
    res = subprocess.run([nginx, "-t", "-p", f"{tmp_path}/", "-c", str(main), "-e", f"{tmp_path}/error.log"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = tool("systemd-analyze", "/usr/bin/systemd-analyze")
    prefix = tmp_path / "prefix"
    files = render(tmp_path, "mlops_app", {"credit-score@.service.j2": "credit-score@.service"},
                   {"mlops_app_version": "1.4.2", "mlops_app_prefix": str(prefix)})
    unit = files["credit-score@.service"].read_text()
    assert f"ExecStart={prefix}/colours/%i/run" in unit and "ProtectSystem=strict" in unit
    run = prefix / "colours" / "blue" / "run"
    run.parent.mkdir(parents=True)
    run.write_text("#!/bin/sh\n")
    run.chmod(0o755)
    instance = tmp_path / "credit-score@blue.service"
    shutil.copy(files["credit-score@.service"], instance)
    res = subprocess.run([analyze, "verify", "--man=no", str(instance)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (res.stdout + res.stderr).splitlines() if "credit-score@blue.service" in ln]
    assert res.returncode == 0 and not problems, res.stdout + res.stderr


def test_nftables_rules_pass_nft_check(tmp_path):
    nft = tool("nft", "/usr/sbin/nft")
    files = render(tmp_path, "common", {"nftables.conf.j2": "nftables.conf"},
                   {"common_firewall_allowed_tcp_ports": [22, 80],
                    "common_firewall_allowed_tcp_sources": {8200: ["10.0.0.0/8", "fd00::/8"]}})
    rules = files["nftables.conf"].read_text()
    assert "\nflush ruleset" not in rules and "delete table inet credit_score" in rules  # engines keep their rules
    res = subprocess.run([nft, "-c", "-f", str(files["nftables.conf"])], capture_output=True, text=True, timeout=60)
    if res.returncode != 0 and "Operation not permitted" in res.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN here")
    assert res.returncode == 0, res.stderr


def test_vault_server_config_is_the_project_file_with_this_hosts_values(tmp_path):
    files = render(tmp_path, "vault", {"server.hcl.j2": "server.hcl"},
                   {"inventory_hostname": "vault-1.example", "inventory_hostname_short": "vault-1",
                    "vault_retry_join": ["https://vault-2.example:8200"], "vault_config_dir": "/etc/openbao",
                    "vault_config_source": str(ANSIBLE_DIR.parent / "vault" / "config" / "server.hcl")})
    hcl = files["server.hcl"].read_text()
    assert 'api_addr      = "https://vault-1.example:8200"' in hcl
    assert 'cluster_addr  = "https://vault-1.example:8201"' in hcl
    assert 'node_id = "vault-1"' in hcl and 'leader_api_addr     = "https://vault-2.example:8200"' in hcl
    assert "/etc/openbao/tls/vault.crt" in hcl and "/etc/vault/tls" not in hcl
    assert 'storage "raft"' in hcl and "tls_min_version" in hcl  # the rest as in the repository


# ---- the shared prediction store (issue 14): roles/postgres and the monitor timer of roles/mlops_app -----------
def test_monitor_timer_and_service_pass_systemd_analyze_verify_and_the_script_runs_the_monitor(tmp_path):
    analyze = tool("systemd-analyze", "/usr/bin/systemd-analyze")
    prefix = tmp_path / "prefix"
    models = tmp_path / "models"
    files = render(tmp_path, "mlops_app", {"credit-score-monitor.service.j2": "credit-score-monitor.service",
                                           "credit-score-monitor.timer.j2": "credit-score-monitor.timer",
                                           "monitor.j2": "monitor", "credit-score.env.j2": "credit-score.env"},
                   {"mlops_app_version": "1.4.2", "mlops_app_prefix": str(prefix), "mlops_app_env": "development",
                    "mlops_app_models_dir": str(models), "mlops_app_reports_dir": str(tmp_path / "reports"),
                    "mlops_app_state_dir": str(tmp_path / "jobs"), "mlops_app_monitor_args": ["--dry-run"],
                    "mlops_app_monitor_textfile": str(tmp_path / "textfile" / "credit_score.prom")})
    unit = files["credit-score-monitor.service"].read_text()
    assert f"ExecStart={prefix}/monitor --dry-run --textfile {tmp_path}/textfile/credit_score.prom\n" in unit
    assert "Type=oneshot" in unit and "KillMode=process" in unit and f"{tmp_path}/textfile\n" in unit
    timer = files["credit-score-monitor.timer"].read_text()
    assert "OnCalendar=*-*-* *:17:00" in timer and "Persistent=true" in timer
    script = prefix / "monitor"
    script.parent.mkdir(parents=True)
    shutil.copy(files["monitor"], script)
    script.chmod(0o755)
    for name in ("credit-score-monitor.service", "credit-score-monitor.timer"):
        shutil.copy(files[name], tmp_path / name)
    res = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / "credit-score-monitor.service"),
                          str(tmp_path / "credit-score-monitor.timer")], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (res.stdout + res.stderr).splitlines() if "credit-score-monitor" in ln]
    assert res.returncode == 0 and not problems, res.stdout + res.stderr

    # the script: nothing deployed yet is not an error; a broken state file is; with an active colour it runs
    # the real `credit-score monitor` of that colour's release with its settings (here: no champion registered)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_SCORE_", "MLFLOW_"))}
    first = subprocess.run([str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert first.returncode == 0 and "nothing to monitor" in first.stderr
    (prefix / "state").mkdir()
    (prefix / "state" / "active-colour").write_text("purple")
    assert subprocess.run([str(script)], capture_output=True, text=True, timeout=60, env=env).returncode == 1
    (prefix / "state" / "active-colour").write_text("green")
    colour = prefix / "colours" / "green"
    (colour / "release" / "venv" / "bin").mkdir(parents=True)
    (colour / "release" / "venv" / "bin" / "credit-score").symlink_to(Path(sys.executable).with_name("credit-score"))
    shutil.copy(files["credit-score.env"], colour / "credit-score.env")
    (colour / "secrets.env").write_text("")
    run = subprocess.run([str(script), "--dry-run", "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 1 and "no champion registered for credit-score" in run.stderr, run.stderr[-2000:]
    assert (models / "mlruns").exists() or any(models.iterdir()), "it used the colour's models directory"


def test_postgres_role_configuration_runs_a_real_server(tmp_path):
    """roles/postgres's conf.d file and pg_hba.conf on a real PostgreSQL: the service's role logs in to its
    database with its password over TCP; a wrong password, another database and another role are refused."""
    import psycopg

    from tests.integration.test_monitoring_store_outage import Postgres

    pg = Postgres()
    try:
        password = "s3cret-" + os.urandom(8).hex()
        files = render(tmp_path, "postgres", {"credit-score.conf.j2": "credit-score.conf",
                                              "pg_hba.conf.j2": "pg_hba.conf"},
                       {"postgres_port": pg.port, "postgres_password": password,
                        "postgres_settings": {"log_min_duration_statement": "1s", "application_name": "it's"}})
        conf = files["credit-score.conf"].read_text()
        assert "listen_addresses = '127.0.0.1'" in conf and f"port = {pg.port}" in conf
        assert "password_encryption = scram-sha-256" in conf and "application_name = 'it''s'" in conf
        # what the role's tasks do with community.postgresql, as the superuser
        with psycopg.connect(pg.url.replace("+psycopg", ""), autocommit=True) as c:
            c.execute(f"CREATE ROLE credit_score LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'")
            c.execute("CREATE DATABASE credit_score OWNER credit_score ENCODING 'UTF8' TEMPLATE template0")
        pg.stop()
        data = pg.dir / "data"
        shutil.copy(files["credit-score.conf"], data / "credit-score.conf")
        shutil.copy(files["pg_hba.conf"], data / "pg_hba.conf")
        with open(data / "postgresql.conf", "a") as f:
            f.write("\ninclude 'credit-score.conf'\n")
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            for name in ("credit-score.conf", "pg_hba.conf"):
                os.chown(data / name, pw.pw_uid, pw.pw_gid)
        pg.start()

        def login(user: str, pw: str, db: str) -> str:
            try:
                with psycopg.connect(host="127.0.0.1", port=pg.port, user=user, password=pw, dbname=db,
                                     connect_timeout=5) as c:
                    return c.execute("SELECT current_user || '@' || current_database()").fetchone()[0]
            except psycopg.OperationalError as e:
                return f"refused: {e}"

        assert login("credit_score", password, "credit_score") == "credit_score@credit_score"
        assert "password authentication failed" in login("credit_score", "wrong-password", "credit_score")
        assert "rejects connection" in login("credit_score", password, "postgres")
        assert "rejects connection" in login("postgres", "", "postgres")
    finally:
        pg.destroy()
