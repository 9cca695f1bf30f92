"""The exit codes of `python -m search`, which scripts and Hydra sweeps read: every layer that ends a process uses them."""

EXIT_USAGE = 2  # bad input: one line naming the field and what to do
EXIT_SEARCH_FAILED = 3  # the search ran but could not finish (every trial failed, a full disk, a bug)
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: runs KILLED, resumable
