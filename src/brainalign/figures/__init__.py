"""Figures beyond the score curves of :mod:`brainalign.plots`: one module per figure family.

Every function here draws from one NetCDF file's Dataset alone and saves through
:func:`brainalign.figures.style.save`, so every figure shares one style and is written in
every requested format (PNG plus SVG or PDF). :func:`brainalign.plots.plot_file` dispatches
to them, which is what ``brainalign plot`` and the workflow's figure rules call.
"""
