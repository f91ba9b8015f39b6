"""Named running sums of an epoch's metrics, summed over DDP ranks in one collective."""

from __future__ import annotations

import torch

from dlvf_ros.training.distributed import DistributedContext, all_reduce_sum


class RunningSums:
    """Float64 sums under fixed names: `add(loss=..., n=...)` during the epoch, `reduced(context)` at its end (every
    rank must call it), then read them by name. Unknown names are an error, so a typo cannot start a new sum."""

    def __init__(self, names: tuple[str, ...]) -> None:
        if len(set(names)) != len(names):
            raise ValueError(f"RunningSums: duplicate names in {names}")
        self.names = names
        self._values = torch.zeros(len(names), dtype=torch.float64)

    def add(self, **values: float) -> None:
        for name, value in values.items():
            self._values[self.names.index(name)] += float(value)

    def reduced(self, context: DistributedContext) -> RunningSums:
        """The sums over all ranks (a collective)."""
        total = RunningSums(self.names)
        total._values = all_reduce_sum(self._values, context)
        return total

    def __getitem__(self, name: str) -> float:
        return float(self._values[self.names.index(name)])

    def ratio(self, numerator: str, denominator: str) -> float:
        """numerator / denominator, with a denominator of at least 1 (an empty epoch gives 0, not NaN)."""
        return self[numerator] / max(self[denominator], 1.0)
