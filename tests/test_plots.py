"""Plots are drawn from result files alone, for every figure the data allows."""

import numpy as np
from matplotlib.image import imread

from sim import metrics
from sim.buddy import Zone
from sim.plots import plot_run
from sim.results import Recorder, Result, write_timeseries


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
