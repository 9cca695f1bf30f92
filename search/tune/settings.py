"""What the tune layer reads of a search's config, part by part, each part handed on to the layer that owns it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig


@dataclass(frozen=True)
class Settings:
    """The parts of the config a search's training reads: `tuner` and `tracking` go to `make_tuner`, `search` and
    `data` to `evaluate_winner` (and `data` to the hypermodel: shuffle buffer, season), `lr_find` to the LR range test.

    A fresh process (a `search.workers` worker, a fit process) plans the search again from the whole config:
    `child_config(path, experiment)` writes it there (secrets redacted; `experiment`, if given, is the one it logs to).
    """

    seed: int
    tuner: Any
    search: Any
    data: Any
    tracking: Any
    lr_find: Any
    child_config: Callable[[Path, str | None], Path]

    @classmethod
    def of(cls, cfg: DictConfig) -> Settings:
        """Split a composed config (the command layer's, or a child process's own) into its parts."""
        from search.core.files import save_child_config

        child_config = functools.partial(save_child_config, cfg)
        return cls(cfg.seed, cfg.tuner, cfg.search, cfg.data, cfg.tracking, cfg.lr_find, child_config)
