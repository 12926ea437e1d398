"""The Python client of the HTTP API, sync and async, against the real server."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from spokehub.errors import (
    InputTooLarge,
    InvalidInput,
    InvalidRunState,
    RunIdConflict,
    RunNotFound,
    WorkflowNotFound,
)
from spokehub.remote import AsyncRemoteClient, RemoteClient, RemoteError, RemoteRun
from spokehub.types import RunStatus
from tests.server.conftest import LiveServer


def _wait(api: RemoteClient, run_id: str, status: RunStatus) -> RemoteRun:
    deadline = time.monotonic() + 10
    while (run := api.get_run(run_id)).status is not status and time.monotonic() < deadline:
        time.sleep(0.02)
    return run


def test_sync_client_drives_a_run_end_to_end(live: LiveServer) -> None:
    run_id = f"remote-{secrets.token_hex(4)}"
    with (
        RemoteClient(live.url, live.tokens["operator"]) as api,
        RemoteClient(live.url, live.tokens["approver"]) as approver,
    ):
        run = api.start("api_review", {"doc": "spec"}, run_id=run_id)
        assert run.id == run_id
        assert api.start("api_review", {"doc": "spec"}, run_id=run_id).id == run_id
        with pytest.raises(RunIdConflict):
            api.start("api_review", {"doc": "other"}, run_id=run_id)
        assert _wait(api, run_id, RunStatus.WAITING).status is RunStatus.WAITING
        assert approver.approve(run_id, comment="ok") == "editor"
        with pytest.raises(InvalidRunState):
            approver.reject(run_id)
        done = _wait(api, run_id, RunStatus.COMPLETED)
        assert done.result == "spec approved by test-approver"
        assert done.data["steps"][0]["kind"] == "approval"
        assert run_id in [r.id for r in api.list_runs(search=run_id)]
        assert api.list_runs(search=run_id, status="failed") == []
        forked = api.fork(run_id, from_step=1)
        assert forked.id != run_id
        assert any(wf["name"] == "api_review" for wf in api.workflows())
        assert isinstance(api.queues(), list)
        assert isinstance(api.workers(), list)


def test_sync_client_errors(live: LiveServer) -> None:
    with RemoteClient(live.url, live.tokens["viewer"]) as viewer:
        with pytest.raises(RunNotFound) as missing:
            viewer.get_run("no such run?#")
        assert missing.value.run_id == "no such run?#"
        with pytest.raises(RemoteError) as forbidden:
            viewer.cancel("anything")
        assert (forbidden.value.status, forbidden.value.code) == (403, "forbidden")
    with RemoteClient(live.url, "shk_wrong") as stranger, pytest.raises(RemoteError) as denied:
        stranger.list_runs()
    assert denied.value.status == 401
    with RemoteClient(live.url, live.tokens["operator"]) as api:
        with pytest.raises(WorkflowNotFound):
            api.start("no_such_workflow")
        with pytest.raises(RemoteError) as invalid:
            api.fork("x", from_step=0)
        assert invalid.value.code == "invalid_request"
    with pytest.raises(ValueError, match="http"):
        RemoteClient("127.0.0.1:8321", "t")


async def until(api: AsyncRemoteClient, run_id: str, status: RunStatus) -> RemoteRun:
    for _ in range(500):
        run = await api.get_run(run_id)
        if run.status is status:
            return run
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} is still {run.status} after 10s, not {status}")


def test_async_client_is_the_same_api(live: LiveServer) -> None:
    run_id = f"aremote-{secrets.token_hex(4)}"

    async def scenario() -> RemoteRun:
        async with AsyncRemoteClient(live.url, live.tokens["operator"]) as api:
            await api.start("api_wait_signal", run_id=run_id)
            await until(api, run_id, RunStatus.WAITING)
            await api.send_signal(run_id, "go", {"n": 7})
            with pytest.raises(RunNotFound):
                await api.send_signal("ghost", "go")
            run = await until(api, run_id, RunStatus.COMPLETED)
            assert [r.id for r in await api.list_runs(search=run_id)] == [run_id]
            other = await api.start("api_wait_signal", run_id=f"{run_id}-c")
            await until(api, other.id, RunStatus.WAITING)
            await api.cancel(other.id)
            await until(api, other.id, RunStatus.CANCELLED)
            assert await api.workflows()
            return run

    run = asyncio.run(scenario())
    assert run.result == {"n": 7}


def test_bad_input_comes_back_as_the_embedded_clients_errors(live: LiveServer) -> None:
    with RemoteClient(live.url, live.tokens["operator"]) as api:
        with pytest.raises(InvalidInput, match="UTF-8"):
            api.start("api_echo", {"event": {"x": "\ud800"}})
        with pytest.raises(InvalidInput, match="run id"):
            api.start("api_add", {"a": 1}, run_id="a/b")
        with pytest.raises(InputTooLarge, match="reference"):
            api.start("api_echo", {"event": {"blob": "x" * (1024 * 1024 + 1)}})
