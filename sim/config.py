"""Experiment configs: YAML files validated by a pydantic schema.

Every error is one line naming the file, the key path, what was expected and what was
found, e.g. ``configs/x.yaml: buddy.watermark_scale_factor: expected a number from 1
to 3000, got 0``. Unknown keys are errors with a "did you mean" suggestion.

``--set key.path=value`` overrides are applied to the raw YAML before validation; the
value is read as YAML (``true``, ``130``, ``16GiB``). ``variants:`` maps a variant
name to overrides of the same dotted form, and ``resolve_variants`` gives one
validated config per variant.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sim.errors import FragsimError
from sim.units import parse_duration, parse_size

Size = Annotated[int, BeforeValidator(parse_size)]
Duration = Annotated[float, BeforeValidator(parse_duration)]


class Section(BaseModel):
    """A config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class MachineConfig(Section):
    """The simulated machine: one zone of ``memory / page_size`` pages."""

    memory: Size = Field(1 << 30, description="installed memory, e.g. 16GiB")
    page_size: Size = Field(4096, description="only 4KiB is modelled")
    cpus: int = Field(2, ge=1, le=1024, description="sizes the per-CPU lists")
    max_order: int = Field(10, ge=4, le=20, description="MAX_PAGE_ORDER")
    pageblock_order: int = Field(9, ge=4, le=20)
    nr_populated_zones: int = Field(
        3, ge=1, le=5, description="zones the THP min_free_kbytes formula counts"
    )


class BuddyConfig(Section):
    """Page allocator switches and sysctls (mm/page_alloc.c)."""

    pcp: bool = True
    grouping_by_mobility: bool = True
    free_list_order: Literal["lifo", "fifo", "address"] = "lifo"
    thp: bool = True
    min_free_kbytes: int | None = Field(None, ge=128, le=4 << 20)
    watermark_scale_factor: int = Field(10, ge=1, le=3000)
    watermark_boost_factor: int = Field(15000, ge=0)
    percpu_pagelist_high_fraction: int = Field(0, ge=0)


class ExperimentConfig(Section):
    """One experiment: the machine, its allocator, what runs on it, for how long."""

    name: str = "experiment"
    seed: int = Field(1, ge=0)
    duration: Duration = 60.0
    sample_every: Duration = Field(1.0, gt=0)
    machine: MachineConfig = Field(default_factory=MachineConfig)
    buddy: BuddyConfig = Field(default_factory=BuddyConfig)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)


# ------------------------------------------------------------------ loading


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in a file, or a one-line FragsimError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise FragsimError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise FragsimError(f"{path}{where}: expected valid YAML, got {problem}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FragsimError(f"{path}: expected a mapping of keys, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (['a', 'b', 'c'], value read as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise FragsimError(f"--set {text}: expected KEY.PATH=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_override(data: dict[str, Any], path: list[str], value: Any, source: str) -> None:
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(path[: i + 1])
            raise FragsimError(f"{source}: {where}: expected a section, got {child!r}")
        node = child
    node[path[-1]] = value


def load_config(
    path: str | Path, overrides: Sequence[str] = (), variant: str | None = None
) -> ExperimentConfig:
    """Read, override and validate one config (or one of its variants)."""
    raw = load_yaml(path)
    return validate_config(raw, str(path), overrides, variant)


def validate_config(
    raw: dict[str, Any], source: str, overrides: Sequence[str] = (), variant: str | None = None
) -> ExperimentConfig:
    data = copy.deepcopy(raw)
    origins: dict[tuple[str, ...], str] = {}
    if variant is not None:
        variants = data.get("variants") or {}
        if variant not in variants:
            raise FragsimError(
                f"{source}: variants: expected one of {', '.join(variants) or '(none)'}, "
                f"got {variant!r}"
            )
        changes = variants[variant]
        if not isinstance(changes, dict):
            raise FragsimError(
                f"{source}: variants.{variant}: expected a mapping of KEY.PATH: VALUE, "
                f"got {changes!r}"
            )
        for key, value in changes.items():
            key_path = str(key).split(".")
            apply_override(data, key_path, value, f"{source}: variants.{variant}")
            origins[tuple(key_path)] = f"{source}: variants.{variant}"
    for text in overrides:
        key_path, value = parse_override(text)
        apply_override(data, key_path, value, f"--set {text}")
        origins[tuple(key_path)] = f"--set {text}"
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise FragsimError(_one_line(e, source, origins)) from None
    _check_consistency(config, source)
    return config


def _check_consistency(config: ExperimentConfig, source: str) -> None:
    machine = config.machine
    if machine.page_size != 4096:
        raise FragsimError(
            f"{source}: machine.page_size: expected 4KiB (the only size modelled), "
            f"got {machine.page_size}"
        )
    if machine.pageblock_order > machine.max_order:
        raise FragsimError(
            f"{source}: machine.pageblock_order: expected at most max_order "
            f"({machine.max_order}), got {machine.pageblock_order}"
        )
    pages = machine.memory // machine.page_size
    if pages < 4 << machine.pageblock_order:
        raise FragsimError(
            f"{source}: machine.memory: expected at least 4 pageblocks "
            f"({4 << machine.pageblock_order} pages), got {machine.memory} bytes"
        )


def resolve_variants(
    path: str | Path, overrides: Sequence[str] = ()
) -> dict[str, ExperimentConfig]:
    """One validated config per variant, or {"default": config} without variants."""
    raw = load_yaml(path)
    names = list((raw.get("variants") or {}).keys())
    if not names:
        return {"default": validate_config(raw, str(path), overrides)}
    return {name: validate_config(raw, str(path), overrides, name) for name in names}


def to_yaml(config: ExperimentConfig) -> str:
    """The fully resolved config, as YAML a later run can read back."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


# ------------------------------------------------------------------ error messages


def _one_line(error: ValidationError, source: str, origins: dict[tuple[str, ...], str]) -> str:
    first = error.errors(include_url=False)[0]
    loc = tuple(str(part) for part in first["loc"])
    key = ".".join(loc)
    where = origins.get(loc, source)
    kind = first["type"]
    got = first.get("input")
    if kind == "extra_forbidden":
        hint = _did_you_mean(loc)
        return f"{where}: {key}: unknown key{hint}"
    if kind == "missing":
        return f"{where}: {key}: expected a value, got nothing"
    return f"{where}: {key}: {_expected(first, loc)}, got {got!r}"


def _field_info(loc: tuple[str, ...]):
    model: type[BaseModel] | None = ExperimentConfig
    info = None
    for part in loc:
        if model is None or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        annotation = info.annotation
        model = annotation if isinstance(annotation, type) and issubclass(
            annotation, BaseModel) else None
    return info


def _did_you_mean(loc: tuple[str, ...]) -> str:
    parent = _field_info(loc[:-1]) if len(loc) > 1 else None
    model = ExperimentConfig if len(loc) == 1 else (parent.annotation if parent else None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _expected(error: dict, loc: tuple[str, ...]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        info = _field_info(loc)
        low = high = None
        for meta in info.metadata if info else ():
            if isinstance(meta, Ge | Gt):
                low = meta.ge if isinstance(meta, Ge) else meta.gt
            if isinstance(meta, Le | Lt):
                high = meta.le if isinstance(meta, Le) else meta.lt
        if low is not None and high is not None:
            return f"expected a number from {low} to {high}"
        if low is not None:
            return f"expected a number of at least {low}"
        return f"expected a number of at most {high}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}".replace("'", "")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "expected a whole number"
    if kind in ("float_parsing", "float_type"):
        return "expected a number"
    if kind in ("bool_parsing", "bool_type"):
        return "expected true or false"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping of keys"
    if kind in ("string_type",):
        return "expected a string"
    if kind == "value_error" and "error" in ctx:
        message = str(ctx["error"])
        return message.split(", got ")[0]
    return f"expected {error['msg'][0].lower()}{error['msg'][1:]}"


def machine_pages(config: ExperimentConfig) -> int:
    return config.machine.memory // config.machine.page_size

