"""The shapes of what polyglot returns: the dicts of modules, deployments, versions and
reports as ``TypedDict``s, and the aliases of its arguments. For annotations:
``def show(m: polyglot.ModuleInfo) -> None``."""

from __future__ import annotations

import datetime
import os
from typing import Dict, List, Literal, Optional, Tuple, TypeAlias, TypedDict, Union

#: What a value sent to or received from a worker can be. ``bytearray`` and
#: ``memoryview`` are sent as bytes and come back as ``bytes``; tuples come back as
#: lists.
Value: TypeAlias = Union[
    None, bool, int, float, str, bytes, bytearray, memoryview,
    List["Value"], Tuple["Value", ...], Dict[str, "Value"],
]

#: A duration: seconds, or a ``timedelta``.
Seconds: TypeAlias = Union[int, float, datetime.timedelta]
#: A path.
StrPath: TypeAlias = Union[str, os.PathLike[str]]
#: The strategy names ``deploy`` takes (with ``_`` or ``-``).
Strategy: TypeAlias = Union[
    Literal["immediate"], Literal["blue_green"], Literal["blue-green"], Literal["rolling"],
    Literal["canary"], Literal["ab_test"], Literal["ab-test"], Literal["shadow"],
]


class InstanceInfo(TypedDict):
    """A worker slot of a module."""

    index: int
    state: str
    pid: Optional[int]
    restarts: int
    in_flight: int
    last_error: Optional[str]


class ModuleInfo(TypedDict):
    """A module (``modules()``, ``module(name)``)."""

    name: str
    implementation: str
    version: str
    language: str
    in_process: bool
    state: Literal["starting", "running", "failed", "draining", "stopped"]
    health: Literal["healthy", "degraded", "unhealthy"]
    methods: List[str]
    fallback: List[str]
    instances: List[InstanceInfo]
    restarts: int
    in_flight: int
    last_error: Optional[str]


class HealthSummary(TypedDict):
    """A version's calls over the health window."""

    calls: int
    errors: int
    timeouts: int
    error_rate: float
    p50_us: int
    p90_us: int
    p99_us: int
    compared: int
    mismatches: int


# A deployment in progress. "from" is a keyword: the functional form.


Rollout = TypedDict("Rollout", {
    "version": str,
    "from": Optional[str],
    "strategy": str,
    "phase": str,
    "stage": int,
    "stages": int,
    "ready": int,
    "replicas": int,
    "batch": int,
    "scheduled_at_ms": Optional[int],
    "percent": int,
    "paused": bool,
    "phase_elapsed_ms": int,
    "verdict": Literal["healthy", "inconclusive", "unhealthy"],
    "verdict_detail": Optional[str],
    "health": Optional[HealthSummary],
})
Rollout.__doc__ = "A deployment in progress (the ``rollout`` of a ``DeploymentStatus``)."


class TrafficShare(TypedDict):
    """Where a share of the calls goes."""

    version: str
    percent: float
    shadow: bool


class DeploymentStatus(TypedDict):
    """A module's deployment (``deployment(module)``)."""

    module: str
    active: Optional[str]
    rollout: Optional[Rollout]
    traffic: List[TrafficShare]


class VersionInfo(TypedDict):
    """One version in a module's history (``history(module)``)."""

    version: str
    state: str
    percent: int
    reason: Optional[str]
    by: Optional[str]
    why: Optional[str]
    strategy: Optional[str]
    staged_at_ms: Optional[int]
    started_at_ms: Optional[int]
    activated_at_ms: Optional[int]
    ended_at_ms: Optional[int]
    health: Literal["unknown", "healthy", "unhealthy"]
    health_reason: Optional[str]
    summary: Optional[HealthSummary]
    retained: bool


class ReloadReport(TypedDict):
    """What ``reload(name)`` did."""

    module: str
    old_version: str
    new_version: str


class LoadReport(TypedDict):
    """What ``Runtime.load(dir)`` did."""

    ready: List[str]
    errors: List[str]


__all__ = [
    "Value",
    "Seconds",
    "StrPath",
    "Strategy",
    "InstanceInfo",
    "ModuleInfo",
    "HealthSummary",
    "Rollout",
    "TrafficShare",
    "DeploymentStatus",
    "VersionInfo",
    "ReloadReport",
    "LoadReport",
]
