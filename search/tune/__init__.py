"""The search itself: Keras Tuner's tuners with tracking, the LR range test, and the run from the search to the
registered winner (`tuning`). The processes it spreads over live in `search.processes`.
"""
