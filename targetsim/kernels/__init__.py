"""Numba kernels for targetsim."""
