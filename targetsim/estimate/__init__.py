"""Fitting processes to histories, pooling and proper scores."""
