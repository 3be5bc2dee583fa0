"""Config loading: units, overrides, variants and one-line errors."""

import pytest

from sim.config import load_config, resolve_variants, to_yaml, validate_config
from sim.errors import FragsimError
from sim.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [("4KiB", 4096), ("16GiB", 16 << 30), ("1.5 MiB", 3 << 19), (8192, 8192), ("512", 512)],
)
def test_sizes_take_iec_units(text, nbytes):
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["4KB", "16G", "lots", "-1KiB", "1.5B", True])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError, match="expected"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ns", 500e-9), ("20ms", 0.02), ("10s", 10.0), ("1h", 3600.0), ("2d", 172800.0), (3, 3.0)],
)
def test_durations_take_units(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_sizes_and_durations_format_back():
    assert format_size(16 << 30) == "16GiB" and format_size(6144) == "6KiB"
    assert format_duration(0.02) == "20ms" and format_duration(3600) == "1h"


def write(tmp_path, text):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return path


def test_config_resolves_units_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "machine:\n  memory: 2GiB\nduration: 10min\n"))
    assert cfg.machine.memory == 2 << 30 and cfg.duration == 600.0
    assert cfg.buddy.pcp is True and cfg.machine.cpus == 2
    assert "memory: 2147483648" in to_yaml(cfg)


def test_set_overrides_are_read_as_yaml(tmp_path):
    path = write(tmp_path, "machine:\n  memory: 2GiB\n")
    cfg = load_config(path, ["machine.memory=4GiB", "buddy.pcp=false", "machine.cpus=4"])
    assert cfg.machine.memory == 4 << 30 and cfg.buddy.pcp is False and cfg.machine.cpus == 4


def one_line_error(path, overrides=()):
    with pytest.raises(FragsimError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_out_of_range_value_names_file_key_range_and_value(tmp_path):
    path = write(tmp_path, "buddy:\n  watermark_scale_factor: 5000\n")
    assert one_line_error(path) == (
        f"{path}: buddy.watermark_scale_factor: expected a number from 1 to 3000, got 5000")


def test_unknown_key_suggests_the_closest(tmp_path):
    path = write(tmp_path, "machine:\n  memroy: 2GiB\n")
    assert one_line_error(path) == f"{path}: machine.memroy: unknown key; did you mean 'memory'?"


def test_unknown_top_level_key_suggests_the_closest(tmp_path):
    path = write(tmp_path, "machin:\n  memory: 2GiB\n")
    assert one_line_error(path) == f"{path}: machin: unknown key; did you mean 'machine'?"


def test_bad_unit_and_bad_choice_and_bad_override(tmp_path):
    path = write(tmp_path, "machine:\n  memory: 2GB\n")
    assert one_line_error(path).startswith(f"{path}: machine.memory: expected a size unit")
    path = write(tmp_path, "buddy:\n  free_list_order: random\n")
    assert one_line_error(path) == (
        f"{path}: buddy.free_list_order: expected one of lifo, fifo or address, got 'random'")
    path = write(tmp_path, "{}\n")
    assert one_line_error(path, ["machine.cpus=0"]) == (
        "--set machine.cpus=0: machine.cpus: expected a number from 1 to 1024, got 0")
    assert one_line_error(path, ["machine.cpus"]).startswith("--set machine.cpus: expected")


def test_broken_yaml_and_missing_file_are_one_line(tmp_path):
    path = write(tmp_path, "machine: [1, 2\n")
    assert one_line_error(path).startswith(f"{path}:")
    missing = tmp_path / "nope.yaml"
    assert one_line_error(missing).startswith(f"{missing}: cannot read")


def test_variants_give_one_config_each(tmp_path):
    path = write(tmp_path, "variants:\n  small: {machine.memory: 1GiB}\n"
                           "  big: {machine.memory: 4GiB, buddy.pcp: false}\n")
    configs = resolve_variants(path)
    assert list(configs) == ["small", "big"]
    assert configs["small"].machine.memory == 1 << 30
    assert configs["big"].machine.memory == 4 << 30 and configs["big"].buddy.pcp is False


def test_a_bad_variant_value_names_the_variant(tmp_path):
    with pytest.raises(FragsimError, match=r"variants.on: machine.cpus: expected a number"):
        validate_config({"variants": {"on": {"machine.cpus": -1}}}, "x.yaml", variant="on")


def test_set_reaches_into_lists_by_index(tmp_path):
    path = write(tmp_path, "workloads:\n  - {kind: thp_probe, gfp: direct}\n")
    cfg = load_config(path, ["workloads.0.gfp=light"])
    assert cfg.workloads[0].model_extra["gfp"] == "light"
    assert one_line_error(path, ["workloads.3.gfp=light"]) == (
        "--set workloads.3.gfp=light: workloads.3: expected an index from 0 to 0, got '3'")


def test_workload_parameters_are_checked_against_their_kind(tmp_path):
    path = write(tmp_path, "workloads:\n  - {kind: thp_probe, intervall: 1s}\n")
    assert one_line_error(path) == (
        f"{path}: workloads.0.intervall: unknown key; did you mean 'interval'?")
    path = write(tmp_path, "workloads:\n  - {kind: thp_prob}\n")
    assert "workloads.0.kind: expected one of" in one_line_error(path)
    assert "did you mean 'thp_probe'" in one_line_error(path)
    path = write(tmp_path, "workloads:\n  - {kind: slab_churn, cache: dentry, rate: -5}\n")
    assert one_line_error(path) == (
        f"{path}: workloads.0.rate: expected a number of at least 0, got -5")


def test_strict_bounds_are_worded_as_strict(tmp_path):
    with pytest.raises(FragsimError) as err:
        validate_config({"sample_every": 0}, "x.yaml")
    assert str(err.value) == "x.yaml: sample_every: expected a number above 0, got 0.0"


def test_a_workload_order_above_max_order_is_a_one_line_error():
    raw = {"machine": {"max_order": 8, "pageblock_order": 6},
           "workloads": [{"kind": "kernel_alloc", "orders": {0: 1.0, 9: 1.0}}]}
    with pytest.raises(FragsimError) as err:
        validate_config(raw, "x.yaml")
    assert str(err.value) == ("x.yaml: workloads.0.orders: expected orders up to "
                              "machine.max_order (8), got 9")
    raw["workloads"] = [{"kind": "thp_probe", "order": 6}]
    assert validate_config(raw, "x.yaml").workloads[0].model_extra["order"] == 6


@pytest.mark.parametrize("orders", [{0: float("inf"), 3: 1.0}, {0: 1e308, 1: 1e308},
                                    {0: 0.0}, {0: -1.0}])
def test_kernel_alloc_weights_must_be_finite_with_a_positive_finite_sum(orders):
    """Generator.choice used to refuse such weights on the first tick; draw_orders
    would draw order 0 forever, so the config refuses them."""
    with pytest.raises(FragsimError) as err:
        validate_config({"workloads": [{"kind": "kernel_alloc", "orders": orders}]}, "x.yaml")
    assert str(err.value).startswith("x.yaml: workloads.0: expected ")
    assert "finite" in str(err.value)
