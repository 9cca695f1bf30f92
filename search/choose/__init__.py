"""After the search: backtest the best configurations, refit or ensemble the winner, its intervals, register it."""
