"""Plots are drawn from result files alone, for every figure the data allows."""

import numpy as np
from matplotlib.image import imread

from sim import metrics
from sim.buddy import Zone
from sim.plots import plot_run
from sim.results import Recorder, Result, read_timeseries, write_timeseries


def test_plots_redraw_from_files_only(tmp_path):
    results = []
    for variant in ("off", "on"):
        for seed in (1, 2):
            rec = Recorder()
            for t in range(0, 20):
                values = {("avail", "9"): 50 - t + seed, ("thp_success_rate", ""): 0.5}
                values.update({("nr_free", str(o)): 100 >> o for o in range(11)})
                values[("slab_occupancy", "dentry")] = 0.5
                rec.sample(float(t), values)
            results.append(Result(variant, seed, np.asarray(rec.times), rec.series()))
    write_timeseries(tmp_path / "timeseries.csv", results)
    zone = Zone(1 << 14)
    (tmp_path / "memmap").mkdir()
    stats = metrics.pageblock_stats(zone)
    np.savez(tmp_path / "memmap" / "end.npz", pageblock_nr_pages=512,
             **{name: getattr(stats, name) for name in (
                 "migratetype", "free_pages", "pcp_pages", "movable_pages", "pinned_pages",
                 "unmovable_pages", "slab_pages")})
    drawn = plot_run(tmp_path)
    assert sorted(p.name for p in drawn) == [
        "availability.png", "buddyinfo_heatmap.png", "memmap.png", "slab_occupancy.png",
        "thp_success.png"]
    for path in drawn:
        image = imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 400
        assert image[..., :3].std() > 0.01  # not a blank canvas
    assert not list(tmp_path.glob(".*tmp*"))


def _run_dir(tmp_path, caches=3, measure_from=5.0):
    import yaml

    results = []
    for variant in ("off", "on"):
        for seed in (1, 2):
            rec = Recorder()
            for t in range(0, 20):
                values = {("avail", "9"): 128.0 if t < 3 else float(seed + t % 2),
                          ("thp_success_rate", ""): min(1.0, 0.1 * t)}
                for c in range(caches):
                    values[("slab_occupancy", f"cache{c}")] = 0.5
                    values[("slab_pages", f"cache{c}")] = 10 * c
                rec.sample(float(t), values)
            results.append(Result(variant, seed, np.asarray(rec.times), rec.series()))
    write_timeseries(tmp_path / "timeseries.csv", results)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"seeds": [1, 2], "variants": {
        v: {"duration": 19.0, "measure_from": measure_from,
            "workloads": [{"kind": "thp_probe", "interval": 0.25, "window": 30}]}
        for v in ("off", "on")}}))
    return tmp_path


def test_run_plots_draw_without_matplotlib_warnings_and_keep_the_top_caches(tmp_path):
    import warnings

    from sim.plots import TOP_CACHES, _by_variant, _measure_from, _thp_window, _top_keys

    run_dir = _run_dir(tmp_path, caches=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a tight_layout or legend warning fails the test
        drawn = plot_run(run_dir)
    assert {p.name for p in drawn} == {"availability.png", "slab_occupancy.png",
                                       "thp_success.png"}
    assert _measure_from(run_dir) == 5.0
    assert _thp_window(run_dir) == "the last 30 attempts (7.5 s)"
    runs = read_timeseries(run_dir / "timeseries.csv")
    keys, total = _top_keys(_by_variant(runs), "slab_occupancy", "slab_pages", TOP_CACHES)
    assert total == 40 and keys == [f"cache{c}" for c in range(39, 39 - TOP_CACHES, -1)]


def test_a_warm_up_past_the_end_is_not_a_window(tmp_path):
    from sim.plots import _measure_from

    assert _measure_from(_run_dir(tmp_path, measure_from=30.0)) == 0.0


def test_availability_without_a_warm_up_gets_a_symlog_axis_when_the_start_dwarfs_the_rest():
    from sim.plots import _spike_dominates

    times = np.arange(20.0)
    assert _spike_dominates(times, np.where(times < 3, 128.0, 2.0))
    assert not _spike_dominates(times, np.full(20, 400.0) - times)  # a replay's slow slope


def test_sweep_rate_intervals_stay_inside_0_1_and_keys_read_as_words():
    from sim.plots import _key_label, _metric_interval, _metric_label

    for values, trials in (([0.0, 1.0], None), ([0.9, 1.0], [80, 80]), ([1.0, 1.0, 1.0], None),
                           ([0.02, 0.0, 0.3], [40, 40, 40])):
        mean, below, above = _metric_interval("thp_success_rate", values, trials)
        assert mean - below >= 0.0 and mean + above <= 1.0
    mean, below, above = _metric_interval("buddy.extfrag_claim", [3.0, 5.0])
    assert below == above > 0
    assert _key_label("defrag.used_ratio").startswith("defrag candidate threshold")
    assert _key_label("caches.dentry.mobility") == "dentry mobility"
    assert _metric_label("defrag.slabs_considered") == "defrag: slabs considered"


def test_a_percentage_is_never_put_on_a_log_axis():
    from sim.plots import _log_x, _SweepLayout

    def layout(key, values):
        points = [{"id": str(i), "params": {key: v}, "resolved": {key: v}, "runs": []}
                  for i, v in enumerate(values)]
        return _SweepLayout({"points": points, "factors": [{"name": key, "keys": [key]}]})

    assert not _log_x(layout("defrag.used_ratio", [5, 50, 90]), [5, 50, 90])
    assert _log_x(layout("machine.cpus", [1, 8, 64]), [1, 8, 64])


def test_a_runs_config_is_parsed_once_and_again_when_it_is_written_again(tmp_path):
    """The plots read a run's config.yaml through one parse (libyaml's, when PyYAML has
    it): the same dict as PyYAML's own safe loader gives, a copy each time (a caller's
    change stays its own), and the new content once the file is written again."""
    import os

    import yaml

    from sim.experiment import load_config
    from sim.plots import _run_config
    from sim.runner import _config_dict

    text = yaml.safe_dump(_config_dict(load_config("configs/quickstart.yaml")))
    (tmp_path / "config.yaml").write_text(text)
    first = _run_config(tmp_path)
    assert first == yaml.safe_load(text) and first["name"] == "quickstart"
    first["name"] = "changed by a caller"
    assert _run_config(tmp_path)["name"] == "quickstart"
    again = text.replace("name: quickstart", "name: quickstart-again")
    (tmp_path / "config.yaml").write_text(again)
    st = (tmp_path / "config.yaml").stat()
    os.utime(tmp_path / "config.yaml", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert _run_config(tmp_path)["name"] == "quickstart-again"
    (tmp_path / "config.yaml").write_text("[not a mapping")
    assert _run_config(tmp_path) == {}
    (tmp_path / "config.yaml").unlink()
    assert _run_config(tmp_path) == {}
