"""ansible-lint (production profile, from ansible/.ansible-lint) and ansible-playbook --syntax-check on every
playbook with every inventory; plus the layout the issue asks for (Galaxy role layout, pinned collections,
every default variable prefixed with its role's name and documented in the role's README)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.infra.ansible.conftest import ANSIBLE_DIR, PLAYBOOKS, ansible_env, tool

ROLES = ("common", "docker", "vault", "elk", "kubernetes", "mlops_app", "postgres")
INVENTORIES = ("local", "staging", "production")


@pytest.mark.integration
@pytest.mark.slow
def test_ansible_lint_production_profile_passes(tmp_path):
    lint = tool("ansible-lint")
    out = subprocess.run([lint, "--nocolor"], cwd=ANSIBLE_DIR, env=ansible_env(tmp_path), capture_output=True,
                         text=True, timeout=600)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-5000:]
    assert "Profile 'production' was required, and it passed" in text, text[-2000:]


@pytest.mark.integration
@pytest.mark.parametrize("inventory", INVENTORIES)
@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(tmp_path, playbook, inventory):
    out = subprocess.run([tool("ansible-playbook"), "--syntax-check", "-i", f"inventories/{inventory}", playbook],
                         cwd=ANSIBLE_DIR, env=ansible_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]


@pytest.mark.parametrize("role", ROLES)
def test_role_layout_prefixed_and_documented_defaults(role):
    root = ANSIBLE_DIR / "roles" / role
    for part in ("defaults/main.yml", "tasks/main.yml", "handlers/main.yml", "meta/main.yml", "README.md"):
        assert (root / part).is_file(), f"{role}: {part} is missing"
    meta = yaml.safe_load((root / "meta" / "main.yml").read_text())["galaxy_info"]
    assert meta["platforms"] and meta["min_ansible_version"] and meta["license"]
    defaults = yaml.safe_load((root / "defaults" / "main.yml").read_text())
    readme = (root / "README.md").read_text()
    assert defaults, role
    for name in defaults:
        assert name.startswith(f"{role}_") and not name.startswith(f"{role}__"), f"{role}: {name} is not prefixed"
        assert re.search(rf"`{re.escape(name)}`", readme), f"{role}/README.md does not document {name}"


def test_collections_are_pinned_and_installed():
    reqs = yaml.safe_load((ANSIBLE_DIR / "requirements.yml").read_text())["collections"]
    assert reqs and all(re.fullmatch(r"\d+\.\d+\.\d+", c["version"]) for c in reqs), reqs
    galaxy = tool("ansible-galaxy")
    listed = subprocess.run([galaxy, "collection", "list", "--format", "yaml"], capture_output=True, text=True,
                            timeout=120, cwd=ANSIBLE_DIR).stdout
    installed = {}
    for paths in yaml.safe_load(listed).values():
        for name, info in paths.items():
            installed.setdefault(name, info["version"])
    def version(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))

    # the pins are what ansible-galaxy installs; the PyPI `ansible` package may bundle a later compatible one
    for c in reqs:
        have = installed.get(c["name"])
        assert have is not None, f"{c['name']} is not installed"
        assert version(have)[0] == version(c["version"])[0] and version(have) >= version(c["version"]), (c, have)
