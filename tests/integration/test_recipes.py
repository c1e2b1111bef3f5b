"""Every identity-provider recipe in the README passes `apachectl -t` and
draws no startup warning from the module."""
import os
import re

import pytest

import harness as H

README = os.path.join(H.REPO, "README.md")


def recipe_blocks():
    text = open(README, encoding="utf-8").read()
    start = text.index("## Identity provider recipes")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```apache\n(.*?)```", text[start:end], re.S)


BLOCKS = recipe_blocks()


def test_every_provider_has_a_recipe():
    text = open(README, encoding="utf-8").read()
    section = text[text.index("## Identity provider recipes"):]
    for name in ("Auth0", "Keycloak", "Okta", "Entra ID", "Cognito", "Google", "Zuplo", "MCP"):
        assert name in section, name
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("block", BLOCKS, ids=[re.search(r"AuthJWKSIssuer (\S+)", b).group(1)[:40]
                                               for b in BLOCKS])
def test_recipe_passes_configtest_without_warnings(block):
    r = H.configtest(block)
    assert r.returncode == 0, r.stderr
    assert "auth_jwks:warn" not in r.stderr and "auth_jwks:error" not in r.stderr, r.stderr
    assert "Syntax OK" in r.stderr + r.stdout
