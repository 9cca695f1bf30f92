"""The conv_lstm space shrunk to seconds a trial, for the `--tiny` runs the tests make of each benchmark."""

SMALL_CONV_LSTM = [
    "space.window_size.max=20",
    "space.filters.values=[4]",
    "space.lstm_units.max=16",
    "space.lstm_layers.max=1",
    "space.batch_size.values=[64]",
]

# A 600-point course series with a 50-point season, so seasonal context and the seasonal baselines run too.
TINY_SEASONAL = ["data.length=600", "data.test_size=60", "data.season_length=50", "tuner.max_epochs=2", "tuner.factor=2"]
TINY_SEASONAL += SMALL_CONV_LSTM
