"""The bearer-token example of docs/service.md runs as written, served by uvicorn."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.issuers import Issuer
from tests.support.servers import ROOT, free_port, serving

pytestmark = pytest.mark.slow

GUIDE = ROOT / "docs" / "service.md"


def example(name: str) -> str:
    """The Python block of the guide that starts with ``# <name> —``."""
    blocks: list[str] = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    (block,) = (block for block in blocks if block.startswith(f"# {name} "))
    return block


def test_me_example_answers_a_good_token_and_refuses_an_expired_one(tmp_path: Path) -> None:
    """me.py: a token of the provider gives its tenant and role; an expired one is a 401
    whose challenge says so; none is a 401 naming no error."""
    idp = Issuer("RS256", kid="k1")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [idp.jwk()]}))
    (tmp_path / "me.py").write_text(example("me.py"))
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "me:app", "--port", str(port)]
    issuer = "https://idp.example.com"
    with (
        serving(command, port=port, log=tmp_path / "log", ready="/docs", cwd=tmp_path) as app,
        httpx.Client(base_url=app.url) as client,
    ):
        good = idp.token(aud="my-api", iss=issuer, tenant="t1", role="editor")
        expired = idp.token(aud="my-api", iss=issuer, lifetime=-60)
        answered = client.get("/me", headers={"Authorization": f"Bearer {good}"})
        refused = client.get("/me", headers={"Authorization": f"Bearer {expired}"})
        missing = client.get("/me")
    assert answered.json() == {"tenant": "t1", "role": "editor"}
    assert refused.status_code == 401
    assert 'error_description="the token has expired"' in refused.headers["www-authenticate"]
    assert missing.headers["www-authenticate"] == 'Bearer realm="optimist"'
