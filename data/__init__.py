"""Series sources, splits, windowing and baselines: everything that touches the raw series."""
