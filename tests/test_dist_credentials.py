"""Target credentials come from the governance secrets layer and are masked everywhere."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from spokehub.distribution import audit, service
from spokehub.distribution.demo.scenario import DIST, SECRET
from spokehub.distribution.errors import ManifestError
from spokehub.governance.redaction import REDACTOR
from spokehub.governance.secrets import FileProvider, Secrets, configure_secrets
from tests.dist_support import AUTO_GATE, demo_hub, real_client, rollout

FILE_REF = "credentialsRef: file:secrets/webhook-secret"


@pytest.fixture
def secrets_file(tmp_path: Path) -> object:
    path = tmp_path / "secrets.env"
    path.write_text(f"WEBHOOK_SIGNING={SECRET}\n")
    configure_secrets(Secrets([FileProvider(path)]))
    yield path
    configure_secrets(None)


def test_a_secret_reference_signs_the_webhook_and_never_reaches_the_trail(
    sqlite_url: str, tmp_path: Path, secrets_file: object
) -> None:
    edit = {**AUTO_GATE, FILE_REF: "credentialsRef: secret:WEBHOOK_SIGNING"}
    client = real_client(sqlite_url)
    try:
        with demo_hub(tmp_path, edit=edit) as (hub, _, sink):
            result = rollout(client, hub, "r1")
            delivered, rejected = list(sink.events), sink.rejected
        trail = asyncio.run(audit.entries(client.store, distribution=DIST))
    finally:
        client.close()
    assert result["status"] == "Succeeded", result
    assert delivered  # the sink checks each delivery's signature against SECRET
    assert rejected == 0
    assert SECRET not in json.dumps([e.to_dict() for e in trail])
    assert SECRET not in REDACTOR.text(f"signed with {SECRET}")


def test_a_secret_that_does_not_resolve_is_refused_with_its_line(
    tmp_path: Path, secrets_file: object
) -> None:
    edit = {**AUTO_GATE, FILE_REF: "credentialsRef: secret:NOT_THERE"}
    with (
        demo_hub(tmp_path, edit=edit) as (hub, _, _),
        pytest.raises(ManifestError, match=r"hub\.yaml:\d+.*NOT_THERE.*was not found"),
    ):
        service.context_for(str(hub), DIST)
