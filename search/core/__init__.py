"""What every layer uses, and imports nothing above it: exit codes, secrets kept out of output, Ctrl-C and SIGTERM
held while state is written, atomic state files and a full disk, GPUs per process, silenced noise.
"""
