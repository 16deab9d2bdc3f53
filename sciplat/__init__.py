"""sciplat: a science platform (JupyterLab next to the data, TAP, headless notebooks, Dask)."""

__version__ = "0.1.0"
