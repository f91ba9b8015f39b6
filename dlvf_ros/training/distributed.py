"""Multi-process training under `torchrun`: process group set-up, the per-epoch sampler, reductions.

`torchrun --nproc_per_node=N dlvf train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; without them training runs in
one process. Backend: NCCL on CUDA, gloo on CPU. Rank 0 writes every shared output.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


@dataclass
class DistributedContext:
    """Where this process sits: rank, world size, local rank, and its torch device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer (set by torchrun)") from None


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the torchrun process group if there is one; pick the device ("auto", "cpu" or "cuda")."""
    world_size, rank, local_rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; set device: cpu (or auto)")
    torch_device = torch.device("cuda", local_rank % torch.cuda.device_count()) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(torch_device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, torch_device)


def shutdown(context: DistributedContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Element-wise sum over all processes (a copy; unchanged in one process)."""
    values = values.detach().clone().to(context.device)
    if context.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values.cpu()


def broadcast_buffers(module: torch.nn.Module, context: DistributedContext) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank, so all ranks hold the same model."""
    if context.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)


def barrier(context: DistributedContext) -> None:
    if context.distributed:
        dist.barrier()


class EpochSubsetSampler(DistributedSampler):
    """Each epoch: a seeded permutation of the dataset (the same on every rank; `set_epoch` changes it), cut to
    `samples_per_epoch` and dealt round-robin to the ranks, so every rank gets the same number of samples.
    Without `set_epoch` the subset never changes (the validation subset)."""

    def __init__(self, dataset, samples_per_epoch: int, num_replicas: int, rank: int, seed: int) -> None:
        if len(dataset) == 0:
            raise ValueError(
                "EpochSubsetSampler: the dataset split is empty; build the dataset with pairs in this split"
            )
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.dataset_size = len(dataset)
        total = min(int(samples_per_epoch), self.dataset_size)
        self.num_samples = math.ceil(total / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.dataset_size, generator=generator).tolist()
        order = (order * math.ceil(self.total_size / len(order)))[: self.total_size]
        return iter(order[self.rank : self.total_size : self.num_replicas])
