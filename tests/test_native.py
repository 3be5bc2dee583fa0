"""The compiled (mypyc) build and the pure-Python source: which one runs, and that they agree.

.ci/run runs the whole suite twice: once on the compiled build, which it requires
(FRAGSIM_REQUIRE_NATIVE=1), and once with FRAGSIM_PURE_PYTHON=1.
"""

import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from test_golden import PRESSURE

import sim
import sim.buddy
import sim.mmzone  # noqa: F401
import sim.objects
import sim.page_alloc  # noqa: F401
import sim.readahead  # noqa: F401
import sim.replay  # noqa: F401
import sim.slab
import sim.vmscan
import workloads.draws  # noqa: F401  (every NATIVE_MODULES entry is loaded)
import workloads.expiry  # noqa: F401
import workloads.objloop  # noqa: F401
import workloads.pageset  # noqa: F401
from sim import native
from sim.config import load_config
from sim.replay import replay_file
from sim.results import TIMING_KEYS
from sim.runner import run_machine

REPO = Path(__file__).resolve().parent.parent


def write_record(path: Path, digests: dict[str, str]) -> Path:
    path.write_text(json.dumps({"mypy": "9.9", "modules": digests}))
    return path


def true_digests() -> dict[str, str]:
    digests = {m: hashlib.sha256(native.source_path(m).read_bytes()).hexdigest()
               for m in native.NATIVE_MODULES}
    for module, source in native.C_EXTENSIONS.items():
        digests[module] = hashlib.sha256((REPO / source).read_bytes()).hexdigest()
    return digests


def test_a_record_matching_every_source_selects_the_compiled_build(tmp_path):
    record = write_record(tmp_path / "r.json", true_digests())
    assert native.choose({}, record) == (True, "compiled with mypyc 9.9")


def test_the_environment_variable_selects_pure_python(tmp_path):
    record = write_record(tmp_path / "r.json", true_digests())
    assert native.choose({native.PURE_ENV: "1"}, record)[0] is False
    assert native.choose({native.PURE_ENV: "0"}, record)[0] is True


def test_no_record_or_a_broken_one_selects_pure_python(tmp_path):
    assert native.choose({}, tmp_path / "missing.json") == (
        False, "not compiled (no build record)")
    (tmp_path / "bad.json").write_text("{not json")
    assert native.choose({}, tmp_path / "bad.json")[0] is False


def test_a_compile_that_failed_at_install_is_said_once_at_run_time(tmp_path):
    """setup.py writes {"failed": why} when mypyc or the C compiler fails (pip hides its
    output); the run then says so, as it does for a stale build, and not for a pure
    install that was asked for."""
    record = tmp_path / "failed.json"
    record.write_text(json.dumps({"failed": "the C compiler failed: no gcc"}))
    compiled, why = native.choose({}, record)
    assert compiled is False and why.startswith(native.FAILED)
    assert "no gcc" in why and "pip install -v -e ." in why
    assert native.warning(why) == f"fragsim: {why}"
    assert native.warning(native.choose({native.PURE_ENV: "1"}, record)[1]) is None
    assert native.warning(native.choose({}, tmp_path / "missing.json")[1]) is None


def test_an_edited_source_is_never_shadowed_by_its_stale_build(tmp_path):
    digests = true_digests()
    digests["sim.slab"] = "0" * 64  # as if sim/slab.py changed after the compile
    compiled, why = native.choose({}, write_record(tmp_path / "r.json", digests))
    assert compiled is False
    assert why.startswith("sim/slab.py changed since it was compiled")


def test_an_edited_c_extension_is_never_shadowed_by_its_stale_build(tmp_path):
    """The C fast path of the trace parser is recorded as the mypyc modules are."""
    digests = true_digests()
    digests["sim._ftrace_scan"] = "0" * 64  # as if sim/_ftrace_scan.c changed
    compiled, why = native.choose({}, write_record(tmp_path / "r.json", digests))
    assert compiled is False
    assert why.startswith("sim/_ftrace_scan.c changed since it was compiled")
    del digests["sim._ftrace_scan"]  # a record from before the scanner
    assert native.choose({}, write_record(tmp_path / "r.json", digests))[0] is False


def test_the_running_modules_are_the_build_that_was_selected():
    for name in native.NATIVE_MODULES:  # whichever tests ran before, every one loaded
        importlib.import_module(name)
    loaded = native.loaded_compiled()
    assert set(loaded) == set(native.NATIVE_MODULES)
    assert set(loaded.values()) == {sim.NATIVE}, (sim.NATIVE_REASON, loaded)
    if os.environ.get("FRAGSIM_REQUIRE_NATIVE") == "1":
        assert sim.NATIVE, sim.NATIVE_REASON


def _outcome(result) -> dict:
    summary = {k: v for k, v in result.summary.items()
               if k not in TIMING_KEYS}
    return {"summary": summary, "final": result.final, "memmap": result.memmap}


def _short_run() -> dict:
    """The quickstart (file systems, page cache, kernel pages, defragmentation) and the
    golden pressure scenario (slab_churn with evictions, anon, random CPUs)."""
    config = load_config(REPO / "configs" / "quickstart.yaml",
                         ["duration=2s", "machine.memory=96MiB", "workloads.0.files=15000"],
                         variant="defrag-on")
    runs = {"quickstart": _outcome(run_machine(config, 3, "defrag-on"))}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pressure.yaml"
        path.write_text(PRESSURE)
        config = load_config(path, ["duration=3s"])
        runs["pressure"] = _outcome(run_machine(config, config.seed, "default"))
    # The trace replay (sim/replay.py and the parser's C fast path in the compiled
    # build): a real trace slice on its machine's snapshots, RCU frees both ways.
    snaps = REPO / "tests" / "data" / "kmem-traces" / "tmpfs-churn-20k-keep10"
    for rcu_frees in ("trace", "queue"):
        res = replay_file(REPO / "tests" / "data" / "kmem-traces" / "slice.txt.gz",
                          slabinfo=snaps / "before.slabinfo",
                          buddyinfo=snaps / "before.buddyinfo",
                          pagetypeinfo=snaps / "before.pagetypeinfo", rcu_frees=rcu_frees)
        summary = res.summary()
        del summary["wall_s"]
        runs[f"replay-{rcu_frees}"] = {"summary": summary, "nr_free": list(res.zone.nr_free),
                                       "slabinfo": res.caches.format_slabinfo()}
    return runs


CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
import sim
from test_native import _short_run
print(json.dumps({{"native": sim.NATIVE, "run": _short_run()}}, sort_keys=True, default=str))
"""


def test_compiled_and_pure_python_runs_are_identical():
    """The other build runs the same seeded scenario in a child process."""
    env = dict(os.environ)
    if sim.NATIVE:
        env[native.PURE_ENV] = "1"
    else:
        env.pop(native.PURE_ENV, None)  # the compiled build, if this install has one
    out = subprocess.run([sys.executable, "-c", CHILD.format(tests=str(REPO / "tests"))],
                         env=env, cwd=REPO, capture_output=True, text=True, check=True)
    child = json.loads(out.stdout)
    if sim.NATIVE:
        assert child["native"] is False
    here = json.loads(json.dumps(_short_run(), sort_keys=True, default=str))
    assert child["run"]["quickstart"]["summary"]["alloc_ops"] > 10_000
    assert child["run"]["pressure"]["summary"]["workloads"]["slab_churn-5"]["evicted"] > 0
    assert child["run"]["replay-queue"]["summary"]["trace"]["events"] > 3000
    assert child["run"]["replay-queue"]["summary"]["trace"]["replay"]["rcu_queued"] > 0
    assert child["run"] == here
