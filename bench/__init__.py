"""Benchmarks: each script prints ratios measured inside one process run."""
