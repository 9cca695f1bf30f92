"""What lasts and what is read: MLflow behind one Tracker, summary.json, progress lines and the closing table,
figures.
"""
