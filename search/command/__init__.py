"""One command: a Hydra job to an exit code, a search's life in MLflow (its parent run), a multirun's summary, Hydra's
errors as one line.
"""
