"""What both learning rules share: Adam with a cosine schedule, the progress bar, the best-state keeper."""
from __future__ import annotations

import copy

import torch


class Keeper:
    """Remembers the lowest-error state, preferring states that meet the convergence criterion."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.key, self.state, self.iteration = model, None, None, None

    def offer(self, error: float, converged: bool, iteration: int) -> None:
        key = (not converged, error)
        if self.key is None or key < self.key:
            self.key, self.iteration = key, iteration
            self.state = copy.deepcopy(self.model.state_dict())

    def restore(self) -> None:
        self.model.load_state_dict(self.state)


def adam_cosine(params, cfg: dict):
    """Adam at ``cfg["lr"]``, cosine-annealed to 5 % of it over ``cfg["iterations"]``."""
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["iterations"], eta_min=cfg["lr"] * 0.05)
    return opt, sched


def iterations(cfg: dict, name: str, progress: bool):
    """``range(cfg["iterations"])`` behind a tqdm bar (shown when ``progress``)."""
    from tqdm import tqdm

    return tqdm(range(cfg["iterations"]), desc=f"spike-transform ({name})", disable=not progress)
