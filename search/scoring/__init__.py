"""How good a forecast is, in NumPy alone: the winner beside the baselines (MAE, skill, MASE, a verdict) and split-
conformal intervals.
"""
