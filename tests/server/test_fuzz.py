"""Fuzz the API from its own OpenAPI spec (schemathesis) against the real server.

Every generated request, valid or not, must get an answer that is not a 5xx, whose status is
documented, whose content type is declared, and whose body matches the declared schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.conftest import LiveServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# A bound on the run time: examples per operation and generation mode (valid, invalid data).
EXAMPLES = 12


@pytest.mark.slow  # a minute of generated requests: runs in the slow step of scripts/check.py
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_answers_every_request_as_its_spec_says(live: LiveServer, mode: GenerationMode) -> None:
    # An admin token reaches every handler; auth itself is covered by the route x role matrix.
    headers = {"Authorization": f"Bearer {live.tokens['admin']}"}
    schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (
            list(operation.iter_parameters()) or len(operation.body)
        ):
            continue  # nothing to get wrong in a request without parameters or body

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
