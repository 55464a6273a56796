"""One style across figure types: PNG and SVG from ``plot_file``, categorical colours from the
colour-blind-safe palette, labelled axes, and legends that never sit on a panel."""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
import pytest

from brainalign.figures.style import PALETTE
from brainalign.io import write_netcdf
from brainalign.jobs.summary import collect_file
from brainalign.figures import plot_file
from test_figures_data import _planted, _stimuli
from test_model_summary import scores_file
from test_plots_rsa import LAYERS, METRIC_LABEL, make_scores, make_time_scores


def _inputs(tmp_path):
    summary = collect_file({"deep": scores_file(tmp_path / "a.nc", 10, peak=8),
                            "short": scores_file(tmp_path / "b.nc", 5, peak=2)}, tmp_path / "summary.nc")
    return {
        "layers": (write_netcdf(make_scores(), tmp_path / "rsa.nc"), "auto"),
        "time": (write_netcdf(make_time_scores(), tmp_path / "time.nc"), "auto"),
        "rdms": (tmp_path / "rsa.nc", "rdms"),
        "models": (summary, "auto"),
        "table": (summary, "table"),
        "stimuli": (write_netcdf(_stimuli(), tmp_path / "stimuli.nc"), "auto"),
        "brain_data": (write_netcdf(_planted(), tmp_path / "brain.nc"), "auto"),
    }


def _is_grey_or_palette(colour) -> bool:
    rgb = np.array(mcolors.to_rgb(colour))
    if np.ptp(rgb) < 1e-6:  # greys, black and white
        return True
    return any(np.allclose(rgb, mcolors.to_rgb(p), atol=1e-3) for p in PALETTE)


@pytest.mark.parametrize("figure", ["layers", "time", "rdms", "models", "table", "stimuli", "brain_data"])
def test_every_figure_type_shares_the_style(tmp_path, figure):
    path, kind = _inputs(tmp_path)[figure]
    png, svg = tmp_path / f"{figure}.png", tmp_path / f"{figure}.svg"
    fig = plot_file(path, [png, svg], figure=kind)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    head = svg.read_bytes()[:400]
    assert b"<svg" in head and svg.stat().st_size > 5_000
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>" and ax.has_data()
              and ax.axison and not ax.tables and not ax.images]
    # every data panel names its x axis; panels sharing a y axis name it once (first column)
    assert all(ax.get_xlabel() for ax in panels), [ax.get_title() for ax in panels if not ax.get_xlabel()]
    assert not panels or any(ax.get_ylabel() for ax in panels)
    for ax in panels:
        for line in ax.get_lines():
            if line.get_label().startswith("_") or line.get_label() in LAYERS:  # layers: viridis by depth
                continue
            assert _is_grey_or_palette(line.get_color()), (figure, line.get_label(), line.get_color())
    fig.canvas.draw()
    for legend in [*fig.legends, *[ax.get_legend() for ax in fig.axes if ax.get_legend()]]:
        box = legend.get_window_extent()
        for ax in panels:
            if legend.axes is ax:  # a legend inside its own panel must not cover any of its data
                for line in ax.get_lines():
                    points = ax.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
                    inside = ((points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0)
                              & (points[:, 1] < box.y1))
                    assert not inside.any(), (figure, "legend covers", line.get_label())
            elif legend.axes is not ax and legend in fig.legends:
                assert not box.overlaps(ax.get_window_extent()), (figure, "figure legend over a panel")


def test_score_axes_name_the_metric(tmp_path):
    inputs = _inputs(tmp_path)
    for figure in ("layers", "time"):
        path, kind = inputs[figure]
        fig = plot_file(path, [tmp_path / f"{figure}.png"], figure=kind)
        assert METRIC_LABEL in {ax.get_ylabel() for ax in fig.axes}
