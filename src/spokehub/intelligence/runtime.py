"""What one LLM step does when it executes: guardrails, cache, budget, rate limit, the
provider chain with fallbacks, pricing, and the spend row. Workflow code never runs this;
the ``llm.complete`` step's body does, on a worker (its result is then recorded).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from spokehub.intelligence import storage
from spokehub.intelligence.chat import ChatRequest, ChatResponse, estimate_tokens
from spokehub.intelligence.config import Budget, LLMConfig, Target
from spokehub.intelligence.errors import (
    BudgetExceeded,
    LLMConfigurationError,
    ProviderError,
    RateLimited,
)
from spokehub.intelligence.guardrails import GuardrailCheck, check, redact
from spokehub.runtime.context import current_client, current_step

log = logging.getLogger("spokehub.llm")


@dataclass(frozen=True, slots=True)
class _Where:
    """The run and step an LLM call belongs to, and the store to account it in."""

    run_id: str | None
    workflow: str | None
    seq: int | None
    store: Any  # spokehub Store, or None outside a run
    now: float


def _where() -> _Where:
    client = current_client()
    ctx = current_step()
    now = client.clock.now() if client is not None else time.time()
    return _Where(
        run_id=ctx.run_id if ctx else None,
        workflow=ctx.workflow if ctx else None,
        seq=ctx.step if ctx else None,
        store=client.store if client is not None else None,
        now=now,
    )


class LLMRuntime:
    """The configured providers and rules, shared by every LLM step in the process."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config

    async def execute(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one recorded LLM request; the returned dict is what the ledger keeps."""
        where = _where()
        targets = self.config.resolve(request.get("model"))
        messages: list[dict[str, str]] = request["messages"]
        prompt_text = "\n".join(m.get("content", "") for m in messages)
        self._guard("input", prompt_text, targets[0], where)
        estimate = estimate_tokens(messages)
        ttl = request.get("cache_ttl")
        key = cache_key(targets, request) if ttl else None
        if key is not None and where.store is not None:
            hit = await where.store.transact(
                lambda tx: storage.cache_get(tx, key, where.now), write=False
            )
            if hit is not None:
                return await self._cache_hit(request, hit, where)
        warning = await self._check_budget(request, targets[0], estimate, where)
        began = time.perf_counter()
        target, response, fallbacks = await self._call_chain(targets, request, estimate, where)
        cost = self.config.prices.cost(target.provider, target.model, response.usage)
        answer = response.to_dict()
        result = {
            "request": request,
            "provider": target.provider,
            "model": target.model,
            "reported_model": answer.pop("model"),
            **answer,
            "cost": cost,
            "cache_hit": False,
            "latency": round(time.perf_counter() - began, 6),
            "fallbacks": fallbacks,
            "estimated_prompt_tokens": estimate,
            "budget_warning": warning,
        }
        await self._account(where, target, response, cost, key, ttl, result)
        self._guard("output", response.content, target, where)
        log.info(
            "llm call %s: %d+%d tokens, $%.6f; prompt=%s answer=%s",
            target,
            response.usage.prompt_tokens,
            response.usage.completion_tokens,
            cost,
            redact(prompt_text),
            redact(response.content),
        )
        return result

    def _guard(self, stage: str, text: str, target: Target, where: _Where) -> None:
        if self.config.policy is None:
            return
        check(
            self.config.policy,
            GuardrailCheck(
                stage="input" if stage == "input" else "output",
                text=text,
                model=target.model,
                provider=target.provider,
                run_id=where.run_id,
                workflow=where.workflow,
            ),
        )

    async def _cache_hit(
        self, request: dict[str, Any], hit: dict[str, Any], where: _Where
    ) -> dict[str, Any]:
        row = storage.UsageRow(
            run_id=where.run_id,
            workflow=where.workflow,
            seq=where.seq,
            provider=str(hit.get("provider", "")),
            model=str(hit.get("model", "")),
            prompt_tokens=0,
            completion_tokens=0,
            cost=0.0,
            cache_hit=True,
            at=where.now,
        )
        await where.store.transact(lambda tx: storage.add_usage(tx, row))
        log.info("llm call %s:%s answered from the cache", row.provider, row.model)
        return {**hit, "request": request, "cost": 0.0, "cache_hit": True, "fallbacks": []}

    async def _check_budget(
        self, request: dict[str, Any], target: Target, estimate: int, where: _Where
    ) -> str | None:
        raw = request.get("budget")
        budget = Budget(**raw) if raw else self.config.budget_for(where.workflow)
        if budget is None or not budget.limited or where.store is None:
            return None
        price = self.config.prices.get(target.provider, target.model)
        prompt_cost = price.prompt_cost(estimate) if price is not None else 0.0
        day = storage.utc_day(where.now)
        by_run, by_day = await where.store.transact(
            lambda tx: storage.spent(tx, run_id=where.run_id, workflow=where.workflow, day=day),
            write=False,
        )
        warning = None
        for what, limit, spent in (
            ("run", budget.run, by_run),
            (f"day ({day}) of workflow {where.workflow!r}", budget.day, by_day),
        ):
            if limit is None:
                continue
            if spent + prompt_cost > limit:
                raise BudgetExceeded(
                    f"LLM budget of the {what} is ${limit:.4f}: ${spent:.6f} spent, and this "
                    f"call's prompt alone is estimated at ${prompt_cost:.6f} ({estimate} "
                    f"tokens of {target}); the call was not made. Raise the budget "
                    "(SPOKEHUB_LLM_RUN_BUDGET / SPOKEHUB_LLM_DAY_BUDGET or LLMConfig(budgets=...))"
                )
            if spent + prompt_cost >= budget.warn_at * limit:
                warning = f"{what}: ${spent:.6f} of ${limit:.4f} spent"
                log.warning("LLM budget nearly spent: %s (run %s)", warning, where.run_id)
        return warning

    async def _call_chain(
        self, targets: list[Target], request: dict[str, Any], estimate: int, where: _Where
    ) -> tuple[Target, ChatResponse, list[dict[str, Any]]]:
        fallbacks: list[dict[str, Any]] = []
        params = request.get("params", {})
        for i, target in enumerate(targets):
            provider = self.config.providers[target.provider]
            chat = ChatRequest(
                model=target.model,
                messages=request["messages"],
                temperature=float(params.get("temperature", 0.0)),
                max_tokens=params.get("max_tokens"),
                schema=request.get("schema"),
                schema_name=request.get("schema_name") or "answer",
                logprobs=bool(params.get("logprobs", False)),
                top_logprobs=params.get("top_logprobs"),
                seed=params.get("seed"),
                timeout=request.get("timeout"),
            )
            tokens = estimate + int(params.get("max_tokens") or 0)
            warm = getattr(provider, "warm", None)
            if warm is not None:
                # Whatever takes time before the first request (imports, a connection pool)
                # happens before the rate-limit slot is taken, so the slot's window is the
                # window the request really reaches the provider in.
                await warm()
            window = await self._take_slot(target, tokens, where)
            try:
                response = await provider.chat(chat)
            except ProviderError as exc:
                last = i == len(targets) - 1
                if last or type(exc).__name__ not in self.config.fallback_on:
                    raise
                fallbacks.append({"target": str(target), "error": type(exc).__name__})
                log.warning("llm %s failed (%s); falling back to %s", target, exc, targets[i + 1])
                continue
            if window is not None:
                adjust = functools.partial(
                    storage.adjust_tokens,
                    provider=target.provider,
                    window=window,
                    delta=response.usage.total_tokens - tokens,
                )
                await where.store.transact(adjust)
            return target, response, fallbacks
        raise AssertionError("unreachable")  # pragma: no cover

    async def _take_slot(self, target: Target, tokens: int, where: _Where) -> int | None:
        """Wait for room under the provider's rate limit (shared through the database)."""
        limit = self.config.rate_limits.get(target.provider)
        if limit is None or where.store is None:
            return None
        deadline = time.monotonic() + limit.max_wait
        while True:
            now = storage.wall_clock()
            window = int(now // limit.per)
            take = functools.partial(
                storage.take_slot,
                provider=target.provider,
                window=window,
                tokens=tokens,
                max_requests=limit.requests,
                max_tokens=limit.tokens,
            )
            taken = await where.store.transact(take)
            if taken:
                return window
            wait = (window + 1) * limit.per - now + 0.001
            if time.monotonic() + wait > deadline:
                raise RateLimited(
                    f"provider {target.provider!r} is at its rate limit ({limit}) and the "
                    f"wait would pass {limit.max_wait}s",
                    provider=target.provider,
                    retry_after=wait,
                )
            await asyncio.sleep(wait)

    async def _account(
        self,
        where: _Where,
        target: Target,
        response: ChatResponse,
        cost: float,
        key: str | None,
        ttl: float | None,
        result: dict[str, Any],
    ) -> None:
        if where.store is None:
            return
        row = storage.UsageRow(
            run_id=where.run_id,
            workflow=where.workflow,
            seq=where.seq,
            provider=target.provider,
            model=target.model,
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
            cost=cost,
            cache_hit=False,
            at=where.now,
        )
        cached = {k: v for k, v in result.items() if k != "request"}

        def write(tx: Any) -> None:
            storage.add_usage(tx, row)
            if key is not None and ttl:
                storage.cache_put(tx, key, cached, where.now, float(ttl))

        await where.store.transact(write)


def cache_key(targets: list[Target], request: dict[str, Any]) -> str:
    """Same chain, messages, parameters and schema: the same answer will do."""
    material = {
        "targets": [str(t) for t in targets],
        "messages": request["messages"],
        "params": request.get("params", {}),
        "schema": request.get("schema"),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_RUNTIME: LLMRuntime | None = None


def configure(config: LLMConfig | None) -> None:
    """Use ``config`` for every LLM step in this process; None goes back to the environment.

    Call it where workers import your workflows (module level), so every worker has it.

    Example:
        >>> configure(LLMConfig(
        ...     providers={"default": OpenAICompatible("http://127.0.0.1:8080/v1")},
        ...     models={"fast": ["smollm2"]},
        ...     budgets={"content_pipeline": Budget(run=0.50, day=20)},
        ... ))  # doctest: +SKIP
    """
    global _RUNTIME
    _RUNTIME = None if config is None else LLMRuntime(config)


def runtime() -> LLMRuntime:
    """The configured runtime, built from ``SPOKEHUB_LLM_*`` the first time if none was."""
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = LLMRuntime(LLMConfig.from_env())
    return _RUNTIME


def check_ready() -> LLMConfig:
    """The configuration, failing early with the setting to fix when no provider is set up."""
    config = runtime().config
    if not config.providers:
        raise LLMConfigurationError(f"no LLM provider is configured: {config.problem}")
    return config
