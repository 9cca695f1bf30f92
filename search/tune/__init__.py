"""The search itself: Keras Tuner's tuners with tracking, the LR range test, parallel workers and distributed
chief/worker mode.
"""
