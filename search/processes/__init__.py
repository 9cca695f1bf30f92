"""The processes a search spreads over: local workers beside the chief (`search.workers`), the fit processes after
the search, a distributed chief's workers across machines, and the guarded oracle they all reach. The child
processes' entry points are commands of their own (`search.command.worker_process`, `search.command.fit_process`).
"""
