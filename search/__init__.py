"""Hyperparameter search for windowed time-series models: Hydra config -> Keras Tuner -> MLflow."""
