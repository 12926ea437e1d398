"""``@workflow`` and ``@step``: thin, typed decorators that register at import time."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from spokehub.engine.events import CallKind
from spokehub.engine.retry import RetryPolicy
from spokehub.engine.serde import Codec
from spokehub.engine.validation import check_run_id
from spokehub.errors import RegistrationError, WorkflowNotFound
from spokehub.runtime.scope import current_scope
from spokehub.store.base import QueueLimits

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RETRY = RetryPolicy()
DEFAULT_QUEUE = "default"


def _check_function(fn: object, decorator: str) -> Callable[..., Any]:
    if not callable(fn) or inspect.isclass(fn):
        raise RegistrationError(f"{decorator} decorates a function; got {fn!r}")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise RegistrationError(f"{decorator} cannot decorate a generator ({fn!r}); return a value")
    return cast(Callable[..., Any], fn)


def _where(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return repr(fn)
    return f"{code.co_filename}:{code.co_firstlineno}"


@dataclass(frozen=True, slots=True)
class StepSpec:
    step: StepDefinition[..., Any]
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """``@workflow(schedule=...)``: a cron expression, its time zone and catch-up policy.

    The integrations layer's scheduler reads it; the runtime only checks it at declaration.
    """

    cron: str
    timezone: str = "UTC"
    catchup: str = "skip"

    def __post_init__(self) -> None:
        _check_schedule(self)


def _check_schedule(spec: ScheduleSpec) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise RegistrationError(
            f"unknown time zone {spec.timezone!r}; use an IANA name such as 'Europe/Paris'"
        ) from None
    if spec.catchup not in ("skip", "latest", "all"):
        raise RegistrationError(f"catchup is 'skip', 'latest' or 'all', not {spec.catchup!r}")
    try:
        from croniter import croniter
    except ImportError:
        raise RegistrationError(
            "schedules need croniter: pip install 'spokehub[integrations]'"
        ) from None
    if not croniter.is_valid(spec.cron):
        raise RegistrationError(
            f"invalid cron expression {spec.cron!r}; use 5 fields 'minute hour day month "
            "weekday', e.g. '*/5 * * * *'"
        )


@dataclass(frozen=True, slots=True)
class StartControl:
    """``options(debounce=..., key=...)`` / ``options(throttle=(n, period, key))``."""

    debounce: float | None = None
    throttle: tuple[int, float] | None = None
    key: str = ""

    @classmethod
    def of(
        cls, debounce: float | None, throttle: tuple[int, float, str] | None, key: str | None
    ) -> StartControl | None:
        if debounce is None and throttle is None:
            if key is not None:
                raise ValueError("key= goes with debounce= (throttle carries its own key)")
            return None
        if debounce is not None and (not isinstance(debounce, int | float) or debounce <= 0):
            raise ValueError(f"debounce is a positive number of seconds, got {debounce!r}")
        if debounce is not None and not key:
            raise ValueError("debounce needs key=...: the starts that make one burst share it")
        limit = None
        if throttle is not None:
            try:
                n, period, throttle_key = throttle
            except (TypeError, ValueError):
                raise ValueError(
                    "throttle is (starts, seconds, key), e.g. (10, 60, 'tenant-a')"
                ) from None
            if not isinstance(n, int) or n < 1 or period <= 0 or not throttle_key:
                raise ValueError("throttle is (starts >= 1, seconds > 0, a non-empty key)")
            limit = (n, float(period))
            key = key or str(throttle_key)
        return cls(debounce=debounce, throttle=limit, key=str(key))


@dataclass(frozen=True, slots=True)
class ChildSpec:
    workflow: Workflow[..., Any]
    input: dict[str, Any]


class StepDefinition(Generic[P, R]):
    """A function whose every call inside a run is checkpointed.

    Called inside a workflow, a step runs once per run position: its result is recorded and a
    replay returns the recorded result without running it again. Called anywhere else, it is
    the plain function.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None,
        retry: RetryPolicy | None,
        timeout: float | None,
        compensate: Callable[..., Any] | None,
        labels: Sequence[str] = (),
    ) -> None:
        self.fn = fn
        self.name = name or fn.__qualname__
        self.labels = _labels(labels, f"step {self.name!r}")
        self.retry = retry or DEFAULT_RETRY
        self.timeout = timeout
        self.compensate = compensate
        self.is_async = inspect.iscoroutinefunction(fn)
        self.codec = Codec(fn, f"step {self.name!r}")
        self.ref = f"{fn.__module__}:{getattr(fn, '__qualname__', self.name)}"
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = fn.__module__
        if timeout is not None and timeout <= 0:
            raise RegistrationError(f"step {self.name!r}: timeout must be positive seconds")
        if compensate is not None:
            _check_compensation(self.name, fn, compensate)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        scope = current_scope.get()
        if scope is None:
            return self.fn(*args, **kwargs)
        if self.is_async and not scope.is_async:
            raise TypeError(
                f"step {self.name!r} is async but the workflow is sync: make the workflow "
                "`async def`, or the step a plain `def`"
            )
        if not self.is_async and scope.is_async:
            raise TypeError(
                f"step {self.name!r} is a plain function and the workflow is async: call it "
                f"as `await spokehub.call({self.__name__}, ...)` or make it `async def`"
            )
        waiter = scope.call(CallKind.STEP, self.name, StepSpec(self, self.codec.bind(args, kwargs)))
        if scope.is_async:
            return cast(R, _await(waiter))
        return cast(R, waiter.wait())  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<step {self.name}>"


async def _await(waiter: Any) -> Any:
    return await waiter


class Workflow(Generic[P, R]):
    """A function whose runs survive crashes and restarts; see ``spokehub.workflow``."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None,
        version: str | None,
        queue: str,
        run_id: str | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        schedule: ScheduleSpec | None = None,
        starts: StartControl | None = None,
        labels: Sequence[str] = (),
    ) -> None:
        self.fn = fn
        self.name = name or fn.__qualname__
        self.schedule = schedule
        self.starts = starts
        self.labels = _labels(labels, f"workflow {self.name!r}")
        self.version = version or _source_version(fn)
        self.queue = queue
        self.run_id = run_id
        self.priority = priority
        self.concurrency_key = concurrency_key
        self.is_async = inspect.iscoroutinefunction(fn)
        self.codec = Codec(fn, f"workflow {self.name!r}")
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = fn.__module__

    def options(
        self,
        *,
        run_id: str | None = None,
        queue: str | Queue | None = None,
        priority: int | None = None,
        concurrency_key: str | None = None,
        debounce: float | None = None,
        throttle: tuple[int, float, str] | None = None,
        key: str | None = None,
    ) -> Workflow[P, R]:
        """The same workflow with start options, for ``client.start`` or a child call.

        ``concurrency_key`` groups runs a queue's ``key_concurrency`` limits (a tenant, a
        target platform): at most that many runs with the same key are in progress at once.

        ``debounce=SECONDS, key=K``: a burst of starts with the same key starts one run,
        ``SECONDS`` after the last of them, with the last input. ``throttle=(n, period, K)``:
        at most ``n`` starts per ``period`` seconds with key ``K``; more fail with
        ``Throttled``. Both need the integrations layer (``spokehub.integrations.starts``).

        Example:
            >>> client.start(order_saga.options(run_id="order-42"), order)  # doctest: +SKIP
        """
        if run_id is not None:
            check_run_id(run_id)
        return Workflow(
            self.fn,
            name=self.name,
            version=self.version,
            queue=_queue_name(queue) if queue is not None else self.queue,
            run_id=run_id if run_id is not None else self.run_id,
            priority=self.priority if priority is None else priority,
            concurrency_key=concurrency_key
            if concurrency_key is not None
            else self.concurrency_key,
            schedule=self.schedule,
            starts=StartControl.of(debounce, throttle, key) or self.starts,
            labels=self.labels,
        )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        scope = current_scope.get()
        if scope is None:
            return self.fn(*args, **kwargs)
        if self.is_async != scope.is_async:
            raise TypeError(
                f"workflow {self.name!r} called as a child of a workflow of the other kind "
                "(sync/async); children must be of the same kind as their parent"
            )
        spec = ChildSpec(self, self.codec.bind(args, kwargs))
        waiter = scope.call(CallKind.CHILD, self.name, spec)
        if scope.is_async:
            return cast(R, _await(waiter))
        return cast(R, waiter.wait())  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<workflow {self.name} version={self.version}>"


def _check_compensation(name: str, fn: Callable[..., Any], undo: Any) -> None:
    """An undo is called as undo(result, *positional args, **keyword-only args) of the step."""
    if not callable(undo):
        raise RegistrationError(f"step {name!r}: compensate must be a function, got {undo!r}")
    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return  # cannot know the call's shape in advance
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keywords = {p.name: None for p in params if p.kind is p.KEYWORD_ONLY}
    try:
        inspect.signature(undo).bind(None, *positional, **keywords)
    except TypeError as exc:
        shape = ", ".join(["result", *positional, *(f"{k}=..." for k in keywords)])
        raise RegistrationError(
            f"step {name!r}: its compensation {getattr(undo, '__name__', undo)!r} is called as "
            f"undo({shape}) but cannot take that ({exc}); change its parameters to match"
        ) from None
    except ValueError:  # a builtin without a signature: trust it
        return


def _source_version(fn: Callable[..., Any]) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return "unversioned"
    return hashlib.sha256(source.encode()).hexdigest()[:12]


class Registry:
    """Workflows and steps by name, as registered at import time."""

    def __init__(self) -> None:
        self.workflows: dict[str, Workflow[..., Any]] = {}
        self.steps: dict[str, StepDefinition[..., Any]] = {}
        self.step_refs: dict[str, StepDefinition[..., Any]] = {}
        self.queues: dict[str, Queue] = {}

    def add_queue(self, queue: Queue) -> None:
        existing = self.queues.get(queue.name)
        if existing is not None and existing != queue:
            raise RegistrationError(
                f"queue {queue.name!r} is declared twice with different limits ({existing} and "
                f"{queue}); declare it once and import it where it is needed"
            )
        self.queues[queue.name] = queue

    def add_workflow(self, wf: Workflow[..., Any]) -> None:
        _add(self.workflows, wf.name, wf, "workflow")

    def add_step(self, st: StepDefinition[..., Any]) -> None:
        # Step names only need to be unique within a workflow's history, so two modules may
        # both have a step `reserve`; compensation finds a step by its ref (module:qualname).
        self.steps.setdefault(st.name, st)
        self.step_refs[st.ref] = st

    def step_for(self, ref: str | None, name: str) -> StepDefinition[..., Any] | None:
        return self.step_refs.get(ref or "") or self.steps.get(name)

    def workflow(self, name: str) -> Workflow[..., Any]:
        try:
            return self.workflows[name]
        except KeyError:
            known = ", ".join(sorted(self.workflows)) or "none"
            raise WorkflowNotFound(
                f"no workflow named {name!r} is registered in this process (registered: "
                f"{known}); import the module that defines it, e.g. `--app my_module`"
            ) from None


def _add(table: dict[str, Any], name: str, item: Any, what: str) -> None:
    existing = table.get(name)
    if existing is not None and _where(existing.fn) != _where(item.fn):
        raise RegistrationError(
            f"two {what}s are named {name!r}: {_where(existing.fn)} and {_where(item.fn)}; "
            f"give one of them another name with @{what}(name=...)"
        )
    table[name] = item


REGISTRY = Registry()


@dataclass(frozen=True)
class Queue:
    """A named queue with limits, declared once in code that every worker imports.

    Args:
        name: the queue's name (``@workflow(queue=...)``, ``--queues``).
        concurrency: runs of this queue executing at once, across all workers.
        worker_concurrency: runs of this queue one worker executes at once.
        rate_limit: ``(n, seconds)``: at most n runs started per period (first starts).
        key_concurrency: runs in progress at once per ``concurrency_key``
            (``wf.options(concurrency_key=...)``), waits included.

    Limits are enforced when workers claim runs, so every worker should import the same
    declaration; a worker that does not know the queue's limits claims without them.

    Example:
        >>> deploys = Queue("deploys", concurrency=10, key_concurrency=1)  # doctest: +SKIP
        >>> @workflow(queue=deploys)  # doctest: +SKIP
        ... async def deploy(target: str) -> None: ...
    """

    name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None
    rate_limit: tuple[int, float] | None = None
    key_concurrency: int | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a queue needs a name")
        for field_name in ("concurrency", "worker_concurrency", "key_concurrency"):
            value = getattr(self, field_name)
            if value is not None and value < 1:
                raise ValueError(f"Queue {self.name!r}: {field_name} must be at least 1")
        if self.rate_limit is not None:
            n, period = self.rate_limit
            if n < 1 or period <= 0:
                raise ValueError(
                    f"Queue {self.name!r}: rate_limit is (runs, seconds) with runs >= 1 and "
                    "seconds > 0, e.g. (50, 60.0)"
                )
        REGISTRY.add_queue(self)

    @property
    def limits(self) -> QueueLimits:
        return QueueLimits(
            concurrency=self.concurrency,
            rate=self.rate_limit,
            key_concurrency=self.key_concurrency,
        )


def _queue_name(queue: str | Queue) -> str:
    return queue.name if isinstance(queue, Queue) else queue


def _labels(labels: Sequence[str], what: str) -> tuple[str, ...]:
    """Labels say what kind of work something is (``http``, ``llm``), for policies to match."""
    if isinstance(labels, str) or not all(isinstance(x, str) and x for x in labels):
        raise RegistrationError(f"{what}: labels is a list of non-empty strings, e.g. ['http']")
    return tuple(labels)


@overload
def workflow(fn: Callable[P, R], /) -> Workflow[P, R]: ...
@overload
def workflow(
    *,
    name: str | None = None,
    version: str | None = None,
    queue: str | Queue = DEFAULT_QUEUE,
    schedule: str | None = None,
    timezone: str = "UTC",
    catchup: str = "skip",
    labels: Sequence[str] = (),
) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...
def workflow(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    queue: str | Queue = DEFAULT_QUEUE,
    schedule: str | None = None,
    timezone: str = "UTC",
    catchup: str = "skip",
    labels: Sequence[str] = (),
) -> Workflow[P, R] | Callable[[Callable[P, R]], Workflow[P, R]]:
    """Make a function a durable workflow, bare (``@workflow``) or with options.

    Args:
        name: the name runs are recorded under (default: the function's qualified name).
        version: recorded on each run; defaults to a hash of the function's source.
        queue: the queue its runs go to unless ``options(queue=...)`` says otherwise.
        schedule: a cron expression; workers start one run per tick (no arguments), see
            ``docs/integrations.md``. Needs the ``integrations`` extra.
        timezone: the IANA time zone the cron expression is read in.
        catchup: ticks missed while no worker ran: ``skip``, ``latest`` or ``all``.
        labels: what kind of work it is (``deploy``, ``payments``); policies match on them.

    Example:
        >>> @workflow
        ... async def order_saga(order_id: str) -> str:
        ...     reservation = await reserve(order_id)
        ...     return await charge(order_id)
    """

    def wrap(f: Callable[P, R]) -> Workflow[P, R]:
        _check_function(f, "@workflow")
        spec = None if schedule is None else ScheduleSpec(schedule, timezone, catchup)
        wf = Workflow(
            f, name=name, version=version, queue=_queue_name(queue), schedule=spec, labels=labels
        )
        REGISTRY.add_workflow(wf)
        return wf

    return wrap(fn) if fn is not None else wrap


@overload
def step(fn: Callable[P, R], /) -> StepDefinition[P, R]: ...
@overload
def step(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    compensate: Callable[..., Any] | None = None,
    labels: Sequence[str] = (),
) -> Callable[[Callable[P, R]], StepDefinition[P, R]]: ...
def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    compensate: Callable[..., Any] | None = None,
    labels: Sequence[str] = (),
) -> StepDefinition[P, R] | Callable[[Callable[P, R]], StepDefinition[P, R]]:
    """Make a function a checkpointed step, bare (``@step``) or with options.

    Args:
        name: the name recorded in the ledger (default: the function's qualified name).
        retry: how failed attempts are retried (default ``RetryPolicy()``: 3 attempts).
        timeout: seconds one attempt may take before it fails with ``StepTimeout``.
        compensate: called as ``compensate(result, *args, **kwargs)`` to undo the step when
            its run later fails or is cancelled (saga).
        labels: what kind of call it is (``http``, ``llm``); policy bindings match on them.

    Example:
        >>> @step(retry=RetryPolicy(max_attempts=5), compensate=refund)
        ... async def charge(order_id: str, cents: int) -> str:
        ...     return await payments.charge(order_id, cents)
    """

    def wrap(f: Callable[P, R]) -> StepDefinition[P, R]:
        _check_function(f, "@step")
        st = StepDefinition(
            f,
            name=name,
            retry=retry,
            timeout=timeout,
            compensate=compensate,
            labels=labels,
        )
        REGISTRY.add_step(st)
        return st

    return wrap(fn) if fn is not None else wrap
