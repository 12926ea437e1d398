"""Target adapters, one module per kind (fs, git, http-cms, webhook, registry), one protocol."""

from spokehub.distribution.adapters.base import (
    BUILTIN,
    ENTRY_POINT_GROUP,
    BaseAdapter,
    TargetAdapter,
    check_precondition,
    is_installed,
    load_adapter_class,
)

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "BaseAdapter",
    "TargetAdapter",
    "check_precondition",
    "is_installed",
    "load_adapter_class",
]
