"""Config loading: units, overrides, variants and one-line errors."""

import json
from pathlib import Path

import pytest
import yaml

import sim
from sim.config import to_yaml
from sim.errors import FragsimError
from sim.experiment import load_config, resolve_variants, validate_config
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


def test_set_on_one_use_of_a_yaml_alias_changes_that_use_only(tmp_path):
    # configs/bench64.yaml repeats one phases step by alias (*wave): each use must be
    # its own section, or --set on one step would change every step.
    path = write(tmp_path, "workloads:\n  - kind: phases\n    steps: [\n"
                 "      &wave {duration: 1s, workloads: [{kind: thp_probe}]}, *wave, *wave]\n")
    cfg = load_config(path, ["workloads.0.steps.1.duration=2s",
                             "workloads.0.steps.2.workloads.0.interval=5s"])
    steps = cfg.workloads[0].model_extra["steps"]
    assert [step["duration"] for step in steps] == [1.0, 2.0, 1.0]
    assert [step["workloads"][0]["interval"] for step in steps] == [1.0, 1.0, 5.0]
    path = write(tmp_path, "a: &a [1, *a]\n")
    assert one_line_error(path) == f"{path}: expected no YAML alias inside its own anchor, got one"


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


# ------------------------------------------------------------------ issue 16: configs say
# what they mean or are refused; results reproduce from their own files


def cli_error(capsys, *argv):
    """Exit status and the one stderr line of ``fragsim ARGV``."""
    from sim.cli import main

    status = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return status, err.strip()


@pytest.mark.parametrize(("text", "expected"), [
    ("caches:\n  dentri: {mobility: free}\n",
     "caches.dentri: expected a cache fragsim knows, one a workload names, or a size to "
     "declare it, got 'dentri'; did you mean 'dentry'?"),
    ("caches:\n  dentry: {mobility: moev}\n",
     "caches.dentry.mobility: expected one of none, free, move or module:Class, got 'moev'; "
     "did you mean 'move'?"),
    ("caches:\n  dentry: {mobility: 'no_such_module_x:Thing'}\n",
     "caches.dentry.mobility: expected an importable module:Class, got "
     "'no_such_module_x:Thing' (ModuleNotFoundError: No module named 'no_such_module_x')"),
    ("caches:\n  dentry: {mobility: 'sim.defrag:MOBILITY_NAMES'}\n",
     "caches.dentry.mobility: expected a class or factory for module:Class, got "
     "'sim.defrag:MOBILITY_NAMES' (a tuple)"),
    ("machine: {cpus: 2}\nworkloads:\n  - {kind: anon, cpu: 2}\n",
     "workloads.0.cpu: expected a CPU from 0 to 1 (machine.cpus is 2), got 2"),
    ("workloads:\n  - kind: phases\n    steps:\n      - duration: 1s\n"
     "        workloads: [{kind: anon, cpu: 7}]\n",
     "workloads.0.steps.0.workloads.0.cpu: expected a CPU from 0 to 1 (machine.cpus is 2), "
     "got 7"),
    ("machine: {memory: 1000000000}\n",
     "machine.memory: expected a multiple of the page size (4096 bytes), got 1000000000 bytes"),
    ("duration: 5s\nsample_every: 10s\n",
     "sample_every: expected at most the duration (5s), got 10s"),
    ("duration: 0\n", "duration: expected a duration above 0, got 0s"),
    ("workloads:\n  - {kind: slab_churn, cache: dentri}\n",
     "workloads.0.cache: expected a cache fragsim knows or a size (here or under "
     "caches.dentri), got 'dentri'; did you mean 'dentry'?"),
])
def test_a_config_that_does_not_say_what_it_means_is_refused_by_validate_and_run(
        tmp_path, capsys, text, expected):
    path = write(tmp_path, text)
    for command in ("validate", "run"):
        status, err = cli_error(capsys, command, path, *(["--out", tmp_path / "r"]
                                                          if command == "run" else []))
        assert (status, err) == (2, f"fragsim: error: {path}: {expected}")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "expected a mapping of keys, got an empty file"),
    (b"# only a comment\n", "expected a mapping of keys, got an empty file"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe", "expected a YAML text file, got binary data"),
    (b"name: x\x00\n", "expected a YAML text file, got binary data"),
])
def test_an_empty_or_binary_file_is_one_line_and_exit_2(tmp_path, capsys, content, expected):
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    assert cli_error(capsys, "validate", path) == (2, f"fragsim: error: {path}: {expected}")


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path, capsys):
    path = write(tmp_path, "name: x\nmachine:\n  memory: 1GiB\n  cpus: 2\n  memory: 4GiB\n")
    assert cli_error(capsys, "validate", path) == (
        2, f"fragsim: error: {path}:5: memory: expected each key once in a mapping, got it "
           "again (first on line 3)")
    # The same key in two different mappings is fine, and so is a YAML merge key.
    path = write(tmp_path, "base: &b {memory: 1GiB}\n")
    assert load_yaml_ok(path)["base"] == {"memory": "1GiB"}
    path = write(tmp_path, "a: &a {x: 1}\nb:\n  <<: *a\n  x: 2\n")
    assert load_yaml_ok(path)["b"] == {"x": 2}


def load_yaml_ok(path):
    from sim.config import load_yaml

    return load_yaml(path)


def test_a_bad_mobility_from_set_names_the_set_in_replay_too(tmp_path, capsys):
    status, err = cli_error(capsys, "replay", tmp_path / "none.txt", "--set",
                            "caches.dentry.mobility=moev")
    assert status == 2
    assert err == ("fragsim: error: --set caches.dentry.mobility=moev: caches.dentry.mobility: "
                   "expected one of none, free, move or module:Class, got 'moev'; did you "
                   "mean 'move'?")


def test_caches_may_name_what_workloads_create_or_declare_a_size():
    validate_config({"caches": {"kmalloc-96": {"mobility": "free"},
                                "my_cache": {"size": 100, "mobility": "move"},
                                "proc_inode_cache": {}}}, "x.yaml")
    config = validate_config({"caches": {"widget": {"mobility": "free"}},
                              "workloads": [{"kind": "slab_churn", "cache": "widget",
                                             "size": 128}]}, "x.yaml")
    assert config.caches["widget"].mobility == "free"
    # A plug-in mobility that imports is accepted at validate time.
    config = validate_config(
        {"caches": {"dentry": {"mobility": "sim.defrag:FreeMobility"}}}, "x.yaml")
    assert config.caches["dentry"].mobility == "sim.defrag:FreeMobility"
    # fragsim replay's caches come from a slabinfo: any name.
    validate_config({}, "fragsim replay", ["caches.vm_area_struct.mobility=free"],
                    check_names=False)


TMPFS = """\
name: t
duration: 1s
caches:
  dentry: {mobility: free}
variants:
  baseline: {}
  defrag-free: {defrag.enabled: true}
  defrag-move: {defrag.enabled: true, caches.dentry.mobility: move}
"""


def test_set_on_a_key_the_variants_vary_renames_the_variants_it_changes(tmp_path, capsys):
    path = write(tmp_path, TMPFS)
    configs = resolve_variants(path, ["caches.dentry.mobility=move"])
    renamed = "defrag-free[caches.dentry.mobility=move]"
    assert list(configs) == ["baseline[caches.dentry.mobility=move]", renamed, "defrag-move"]
    assert configs[renamed].caches["dentry"].mobility == "move"  # --set wins
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[1] == (f"fragsim: warning: {path}: variants.defrag-free: --set "
                      "caches.dentry.mobility=move changes a key the variants vary, and --set "
                      f"wins; the variant runs as {renamed}")
    # A key the variants do not vary, or the value a variant already has: no renaming.
    assert list(resolve_variants(path, ["duration=2s", "defrag.enabled=true"])) == [
        "baseline[defrag.enabled=true]", "defrag-free", "defrag-move"]
    assert list(resolve_variants(path, ["duration=2s"])) == [
        "baseline", "defrag-free", "defrag-move"]


def test_results_config_reruns_the_experiment(tmp_path, capsys):
    from sim.cli import main

    path = write(tmp_path, TMPFS.replace("duration: 1s", "duration: 500ms\nsample_every: 250ms\n"
                                         "machine: {memory: 64MiB}\nworkloads:\n"
                                         "  - {kind: fs_churn, files: 2000, create_rate: 20000}"))
    assert main(["run", str(path), "--out", str(tmp_path / "a"), "--seeds", "2",
                 "--no-plots", "--set", "machine.cpus=3"]) == 0
    recorded = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert recorded["seeds"] == [1, 2]
    assert main(["run", str(tmp_path / "a" / "config.yaml"), "--out", str(tmp_path / "b"),
                 "--no-plots"]) == 0
    assert "warning" not in capsys.readouterr().err
    again = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert again["seeds"] == recorded["seeds"] and list(again["variants"]) == [
        "baseline", "defrag-free", "defrag-move"]
    for data in (again, recorded):  # the count a variant carries: the list above fixes it
        for variant in data["variants"].values():
            variant.pop("seeds")
    assert again == recorded and again["variants"]["baseline"]["machine"]["cpus"] == 3
    assert ((tmp_path / "a" / "timeseries.csv").read_bytes()
            == (tmp_path / "b" / "timeseries.csv").read_bytes())


def test_another_fragsim_version_is_a_warning_not_an_error(tmp_path, capsys):
    path = write(tmp_path, "fragsim_version: 0.0.1\nseeds: [4, 5, 6]\nduration: 2s\n")
    config = load_config(path)
    assert (config.seed, config.seeds) == (4, 3)
    err = capsys.readouterr().err
    assert err == (f"fragsim: warning: {path}: fragsim_version: written by fragsim 0.0.1, "
                   f"read by {sim.__version__}: results may differ\n")
    with pytest.raises(FragsimError, match=r"seeds: expected a number of replicates or a list "
                                           r"of consecutive seeds, got \[1, 3\]"):
        validate_config({"seeds": [1, 3]}, "x.yaml")


@pytest.mark.parametrize("name", ["quickstart", "tmpfs_churn", "gupta"])
def test_validate_output_is_a_config_that_resolves_to_the_same(tmp_path, capsys, name):
    from sim.runner import validate

    text = validate(f"configs/{name}.yaml", ["duration=3s"])
    path = write(tmp_path, text)
    assert validate(path) == text
    original = resolve_variants(f"configs/{name}.yaml", ["duration=3s"])
    again = resolve_variants(path)
    assert list(again) == list(original)
    assert all(to_yaml(again[v]) == to_yaml(original[v]) for v in original)


def test_validate_then_run_works(tmp_path, capsys):
    from sim.cli import main

    assert main(["validate", "configs/quickstart.yaml", "--set", "duration=1s",
                 "--set", "machine.memory=64MiB", "--set", "workloads.0.files=2000"]) == 0
    path = write(tmp_path, capsys.readouterr().out)
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--seeds", "1",
                 "--no-plots"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert list(summary["variants"]) == ["defrag-off", "defrag-on"]


# ------------------------------------------------------------------ the memory estimate


def test_the_memory_estimate_grows_by_page_and_by_page_holding_workload():
    from sim.footprint import FIXED_BYTES, PER_PAGE_BYTES, estimate_bytes, per_page_bytes

    bare = validate_config({"machine": {"memory": "1GiB"}}, "x.yaml")
    assert estimate_bytes(bare) == FIXED_BYTES + (1 << 18) * PER_PAGE_BYTES
    busy = validate_config({"machine": {"memory": "1GiB"}, "workloads": [
        {"kind": "anon"}, {"kind": "fs_churn", "files": 1000}]}, "x.yaml")
    assert per_page_bytes(busy) == PER_PAGE_BYTES + 8
    assert estimate_bytes(busy) == FIXED_BYTES + (1 << 18) * (PER_PAGE_BYTES + 8) + 1000 * 1024


def test_a_machine_too_large_for_this_computer_is_refused_with_the_estimate(tmp_path):
    from sim.footprint import available_bytes, check_footprint

    config = validate_config({"machine": {"memory": "1TiB"}}, "x.yaml")
    with pytest.raises(FragsimError) as err:
        check_footprint([config], "x.yaml", available=8 << 30)
    assert str(err.value) == (
        "x.yaml: machine.memory: expected a machine this computer can simulate (at most 90% "
        "of the 8.0 GiB available), got 1TiB, estimated to need 16.2 GiB (64 B per page x "
        "268435456 pages + fixed); FRAGSIM_SKIP_MEMORY_CHECK=1 runs it anyway")
    check_footprint([validate_config({}, "x.yaml")], "x.yaml", available=8 << 30)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  100 kB\nMemAvailable:    2048 kB\n")
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    assert available_bytes(meminfo, cgroup) == 2 << 20
    (cgroup / "memory.max").write_text("1048576\n")
    (cgroup / "memory.current").write_text("524288\n")
    assert available_bytes(meminfo, cgroup) == 1 << 19
    assert available_bytes(tmp_path / "nope", cgroup) is None


def test_fragsim_run_refuses_a_huge_machine_before_it_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FRAGSIM_SKIP_MEMORY_CHECK", raising=False)
    monkeypatch.setattr("sim.footprint.available_bytes", lambda: 1 << 30)
    path = write(tmp_path, "machine: {memory: 64GiB}\n")
    status, err = cli_error(capsys, "run", path, "--out", tmp_path / "r")
    assert status == 2
    assert err.startswith(f"fragsim: error: {path}: machine.memory: expected a machine this "
                          "computer can simulate")
    assert "estimated to need 1.2 GiB (64 B per page x 16777216 pages + fixed)" in err
    assert not (tmp_path / "r").exists()


def test_the_zone_takes_machine_and_buddy_keys_by_name_with_the_same_defaults():
    # One definition of each setting: Zone's keyword defaults (for direct use, as in the
    # README) are the config's, and build_zone passes the sections by key name.
    # Read from the source: the compiled Zone's signature is (*args, **kwargs).
    import ast

    from sim.config import BuddyConfig, MachineConfig

    tree = ast.parse(Path("sim/buddy.py").read_text())
    init = next(node for cls in tree.body if isinstance(cls, ast.ClassDef)
                and cls.name == "Zone" for node in cls.body
                if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    params = {a.arg: ast.literal_eval(d)
              for a, d in zip(init.args.kwonlyargs, init.args.kw_defaults, strict=True)}
    for section in (MachineConfig, BuddyConfig):
        for name, field in section.model_fields.items():
            if name in ("memory", "zones", "from_", "online", "pagesets", "boot"):  # node's
                continue
            assert name in params, f"{section.__name__}.{name} is not a Zone argument"
            assert params[name] == field.default, name


def test_defrag_cpu_must_be_a_cpu_of_the_machine():
    with pytest.raises(FragsimError, match=r"defrag.cpu: expected a CPU from 0 to 1 "
                                           r"\(machine.cpus is 2\), got 2"):
        validate_config({"defrag": {"cpu": 2}, "machine": {"cpus": 2}}, "x.yaml")
