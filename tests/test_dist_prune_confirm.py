"""``protect.prune: confirm``: deleting owned resources waits for an approval."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dist_support import API_DOCS, AUTO_GATE, demo_hub, real_client, release, rollout

DOCS = "  config: {path: targets/docs-site}\n"
CONFIRM = {**AUTO_GATE, DOCS: DOCS + "  protect: {prune: confirm}\n"}


@pytest.mark.parametrize("approve", [True, False])
def test_prune_waits_for_an_approval(sqlite_url: str, tmp_path: Path, approve: bool) -> None:
    client = real_client(sqlite_url)
    try:
        with demo_hub(tmp_path, edit=CONFIRM) as (hub, _, _):
            assert rollout(client, hub, "r1")["status"] == "Succeeded"
            text = (hub / "manifests/hub.yaml").read_text()
            assert API_DOCS in text
            (hub / "manifests/hub.yaml").write_text(text.replace(API_DOCS, ""))
            release(hub, "r2", "1.0.1")
            result = rollout(client, hub, "r2", approve=approve)
            exists = (hub / "targets/docs-site/docs/api/orders.md").exists()
    finally:
        client.close()
    if approve:
        assert result["status"] == "Succeeded"
        assert not exists
    else:
        assert result["status"] == "RolledBack"
        assert "prune:docs" in result["reason"]
        assert exists
