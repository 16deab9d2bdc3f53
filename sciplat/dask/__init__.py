"""Dask clusters for scientists: dask-gateway with sciplat's lab launching and quotas."""
