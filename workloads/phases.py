"""``phases``: workloads in sequence (or overlapping) by start and stop times.

Each step lasts ``duration``; its workloads start at the step's start (plus their own
``start``) and stop at its end (or their own earlier ``stop``). Steps run back to back.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.units import Duration
from workloads.base import Workload, WorkloadParams


class PhaseStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duration: Duration
    workloads: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self):
        from workloads import resolve_kind

        for i, spec in enumerate(self.workloads):
            if "kind" not in spec:
                raise ValueError(f"workloads.{i}: expected a kind")
            cls = resolve_kind(spec["kind"])
            params = {k: v for k, v in spec.items() if k != "kind"}
            validated = cls.Params.model_validate(params)
            self.workloads[i] = {"kind": spec["kind"], **validated.model_dump(mode="json")}
        return self


class Phases(Workload):
    kind = "phases"

    class Params(WorkloadParams):
        steps: list[PhaseStep] = Field(default_factory=list)

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        from workloads import resolve_kind

        self.children: list[Workload] = []
        offset = params.start
        for step_no, step in enumerate(params.steps):
            end = offset + step.duration
            for spec in step.workloads:
                cls = resolve_kind(spec["kind"])
                values = {k: v for k, v in spec.items() if k != "kind"}
                child_params = cls.Params.model_validate(values)
                child_params.start = offset + child_params.start
                child_params.stop = end if child_params.stop is None else min(
                    end, offset + child_params.stop)
                child_params.name = child_params.name or (
                    f"{self.name}.{step_no}.{spec['kind']}")
                self.children.append(cls(machine, child_params, len(self.children)))
            offset = end

    def start(self) -> None:
        for child in self.children:
            child.start()

    def run(self):
        return
        yield  # pragma: no cover

    def samples(self, values: dict) -> None:
        for child in self.children:
            child.samples(values)

    def summary(self) -> dict[str, Any]:
        return {child.name: child.summary() for child in self.children}
