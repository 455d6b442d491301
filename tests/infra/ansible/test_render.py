"""The roles' configuration files that only real hosts use, rendered by Ansible from the roles' templates and
checked by their own tools: nginx's site in system mode (Debian's nginx.conf includes conf.d/*.conf) with
`nginx -t`, the systemd unit with `systemd-analyze verify`, the nftables rules with `nft -c`, the Vault server
configuration derived from vault/config/server.hcl."""

from __future__ import annotations

import shutil
import subprocess
import sys

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
