"""Model builders, one module per architecture, registered by the name a search space uses.

Importing this package does not import TensorFlow: the registry knows builders by name
(`models.names`), and a builder's module, which imports Keras at its top, is imported when the
builder is first asked for. Planning a search (`search.plan.planning`) can therefore read the names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping

from models.names import BUILDER_ARGUMENTS, LOSSES, OPTIMIZERS


class _Builders(Mapping):
    """`BUILDERS[name]` is `models.<name>.build`, imported on first use."""

    def __getitem__(self, name: str) -> Callable:
        if name not in BUILDER_ARGUMENTS:
            raise KeyError(name)
        return importlib.import_module(f"models.{name}").build

    def __iter__(self) -> Iterator[str]:
        return iter(BUILDER_ARGUMENTS)

    def __len__(self) -> int:
        return len(BUILDER_ARGUMENTS)


BUILDERS: Mapping[str, Callable] = _Builders()


def __getattr__(name: str):
    """`compile_model` and `forecast` live in `models.common`, which imports Keras: loaded when first used."""
    if name in ("compile_model", "forecast"):
        return getattr(importlib.import_module("models.common"), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")


__all__ = ["BUILDERS", "BUILDER_ARGUMENTS", "LOSSES", "OPTIMIZERS", "compile_model", "forecast"]
