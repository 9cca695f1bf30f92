"""One model from a trial's values: Keras Tuner's HyperModel (build, fit), the Keras backend, a flat per-trial memory."""
