"""Which GPU a job of a Hydra multirun gets: job k gets GPU k mod N.

Set through `CUDA_VISIBLE_DEVICES` (with memory taken as needed) before the backend is imported, so jobs
running side by side never share a card. TensorFlow fixes its devices when first imported, so a job
that is given a GPU runs in a freshly spawned process (see `search.__main__`): a launcher that reuses
worker processes (joblib) cannot leave a job on the previous job's card.
"""

from __future__ import annotations

import os
import subprocess

GPU_SHARING = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
"""Set before a Keras backend starts: several searches (multirun jobs, search.workers) share one GPU, so each takes memory
as it needs it instead of most of the card up front (JAX: 75 %, TensorFlow: nearly all). PyTorch allocates as it goes."""


def visible_gpus() -> list[str]:
    """GPU ids this process may use: `CUDA_VISIBLE_DEVICES` if set, else what `nvidia-smi -L` lists."""
    configured = os.environ.get("CUDA_VISIBLE_DEVICES")
    if configured is not None:
        return [d.strip() for d in configured.split(",") if d.strip() and d.strip() != "-1"]
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(index) for index, line in enumerate(line for line in listed.splitlines() if line.startswith("GPU "))]


def gpu_for_job(job_number: int, gpus: int | None, visible: list[str]) -> str | None:
    """The GPU id for job `job_number`, or None to leave devices alone (no GPU, or `search.gpus=0`).

    `gpus` (`search.gpus`) is N; null means every visible GPU. Ids come from the visible list when it
    has N of them, else 0..N-1.
    """
    count = len(visible) if gpus is None else gpus
    if count <= 0:
        return None
    ids = visible[:count] if len(visible) >= count else [str(index) for index in range(count)]
    return ids[job_number % count]


def job_environment(device: str) -> dict[str, str]:
    """Environment for a job pinned to `device`: that card only, memory allocated as needed (by its backend's setting)."""
    return {"CUDA_VISIBLE_DEVICES": device, **GPU_SHARING}
