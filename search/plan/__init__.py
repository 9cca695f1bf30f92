"""Before any training and without TensorFlow: the search space, the data and layout checked against it, the run dir,
the cores and workers a search gets.
"""
