"""The one fit loop every network trains with: Adam, cosine learning-rate decay, cross-entropy
(optionally weighted per step, for padded sequences), gradient clipping at 5, the weights of the
best validation epoch kept, and what a long run needs around it (:class:`FitContext`):

- a checkpoint after every epoch and at the end of the stage (:mod:`.checkpoints`): a resumed run
  skips finished stages and continues the one in progress from its last epoch, with the optimizer,
  the scheduler and both random generators as they were;
- early stopping: ``patience`` epochs without a better validation accuracy end the stage (the best
  epoch's weights are kept either way);
- mixed precision for the encoders on CUDA (:mod:`.precision`), loader workers with pinned memory
  (:mod:`.batches`), DistributedDataParallel across torchrun's ranks (:mod:`.distributed`);
- one training-log line per epoch (:mod:`.history`).

The encoders and the sequence models differ only in their :class:`~.batches.BatchSource` and how
they score the validation split.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_mmer.config import ModelConfig
from edge_mmer.train.batches import BatchSource, EpochLoader, epoch_plan, shard_plan
from edge_mmer.train.checkpoints import CheckpointStore
from edge_mmer.train.distributed import Distributed
from edge_mmer.train.history import TrainLog
from edge_mmer.train.options import progress as progress_bar
from edge_mmer.train.precision import Precision

log = logging.getLogger(__name__)

__all__ = ["FitContext", "FitResult", "fit_model"]


@dataclass
class FitContext:
    """What every stage of one run shares: where it trains, how, and what it records."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: bool = False
    patience: int = 0  # epochs without improvement before a stage stops (0: never early)
    loader_workers: int = 0
    precision: Precision = field(default_factory=Precision)
    checkpoints: CheckpointStore | None = None
    log: TrainLog = field(default_factory=lambda: TrainLog(None))
    dist: Distributed = field(default_factory=Distributed)
    results: dict[str, FitResult] = field(default_factory=dict)  # stage -> how it went


@dataclass(frozen=True)
class FitResult:
    """A stage's outcome: the best validation accuracy, its epoch (1-based), the epochs run, whether
    it stopped early, and whether it came finished from a checkpoint."""

    val_accuracy: float
    best_epoch: int
    epochs_run: int
    epochs: int
    stopped_early: bool = False
    from_checkpoint: bool = False


@dataclass
class _Progress:
    epoch: int = 0  # epochs finished
    best_acc: float = -1.0
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    stale: int = 0


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return dict(rng.bit_generator.state)


def _restore_rng(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])


def _finished(model: nn.Module, stage: str, rng: np.random.Generator, ctx: FitContext) -> FitResult | None:
    """A stage a resumed run finished before: its weights loaded and the generators restored."""
    if ctx.checkpoints is None:
        return None
    done = ctx.dist.broadcast(ctx.checkpoints.load(stage, "done") if ctx.dist.main else None)
    if done is None:
        return None
    try:
        model.load_state_dict(done["model"])
    except RuntimeError as exc:
        raise _mismatch(ctx, stage, exc) from None
    _restore_rng(rng, done["rng"])
    result = FitResult(**done["result"], from_checkpoint=True)
    log.info("%s: finished in the checkpoint (best validation accuracy %.3f at epoch %d)", stage,
             result.val_accuracy, result.best_epoch)
    return result


def _mismatch(ctx: FitContext, stage: str, exc: Exception) -> Exception:
    from edge_mmer.errors import TrainError

    path = ctx.checkpoints.path(stage, "done") if ctx.checkpoints is not None else stage
    return TrainError(f"checkpoint {path} does not fit this run's {stage} network: {exc}")


@contextmanager
def _frozen(model: nn.Module, names: tuple[str, ...]) -> Iterator[None]:
    """Parameters under the given module prefixes do not train inside the block."""
    params = [p for n, p in model.named_parameters() if any(n.startswith(prefix) for prefix in names)]
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, before, strict=True):
            p.requires_grad_(flag)


def fit_model(model: nn.Module, source: BatchSource, val_accuracy: Callable[[], float], epochs: int,
              cfg: ModelConfig, rng: np.random.Generator, stage: str, ctx: FitContext, *, batch_size: int,
              distributed: bool = False, amp: bool = False, freeze: tuple[str, ...] = (),
              freeze_epochs: int = 0) -> FitResult:
    """Adam + cross-entropy over ``source``'s batches; keeps the weights of the best validation epoch
    (see the module docstring). ``distributed``: DDP across the ranks (each trains on its part of
    every batch); ``amp``: the forward pass under the run's precision; ``freeze``: module prefixes
    that do not train during the first ``freeze_epochs`` epochs."""
    done = _finished(model, stage, rng, ctx)
    if done is not None:
        ctx.results[stage] = done
        return done
    params = [p for p in model.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    precision = ctx.precision if amp else Precision("fp32", ctx.device.type)
    scaler = precision.scaler()
    state = _Progress(best_state=copy.deepcopy(model.state_dict()))
    last = (ctx.dist.broadcast(ctx.checkpoints.load(stage, "last") if ctx.dist.main else None)
            if ctx.checkpoints is not None else None)
    if last is not None:
        try:
            model.load_state_dict(last["model"])
        except RuntimeError as exc:
            raise _mismatch(ctx, stage, exc) from None
        opt.load_state_dict(last["optimizer"])
        sched.load_state_dict(last["scheduler"])
        if scaler is not None and last.get("scaler"):
            scaler.load_state_dict(last["scaler"])
        state = _Progress(epoch=int(last["epoch"]), best_acc=float(last["best_acc"]),
                          best_epoch=int(last["best_epoch"]), best_state=last["best_state"], stale=int(last["stale"]))
        _restore_rng(rng, last["rng"])
        log.info("%s: resuming after epoch %d of %d (best validation accuracy %.3f at epoch %d)", stage,
                 state.epoch, epochs, state.best_acc, state.best_epoch)
        ctx.log.event("resumed", stage=stage, after_epoch=state.epoch)
    world = ctx.dist.world if (distributed and ctx.dist.active) else 1
    loader = EpochLoader(source, ctx.loader_workers, pin_memory=ctx.device.type == "cuda")
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    stopped = False
    bar = progress_bar(range(state.epoch, epochs), stage, ctx.progress and ctx.dist.main,
                       total=epochs - state.epoch)
    for epoch in bar:
        started = time.monotonic()
        frozen = freeze if epoch < freeze_epochs else ()
        with _frozen(model, frozen):
            net = _wrap(model, world, ctx)
            keys = shard_plan(epoch_plan(len(source), batch_size, rng), ctx.dist.rank if world > 1 else 0, world,
                              source.min_batch)
            model.train()
            loss_sum, count = _epoch(net, loader.epoch(keys), opt, scaler, precision, loss_fn, ctx.device)
        sched.step()
        if world > 1:
            loss_sum, count = _sum_across(loss_sum, count, ctx)
        model.eval()
        acc = float(ctx.dist.broadcast(val_accuracy()) if world > 1 else val_accuracy())
        if acc > state.best_acc:
            state.best_acc, state.best_epoch, state.stale = acc, epoch + 1, 0
            state.best_state = copy.deepcopy(model.state_dict())
        else:
            state.stale += 1
        state.epoch = epoch + 1
        loss = loss_sum / max(count, 1)
        ctx.log.write({"stage": stage, "epoch": epoch + 1, "epochs": epochs, "loss": round(loss, 6),
                       "val_accuracy": round(acc, 6), "best_val_accuracy": round(state.best_acc, 6),
                       "best_epoch": state.best_epoch, "lr": opt.param_groups[0]["lr"],
                       "seconds": round(time.monotonic() - started, 3), "world_size": world,
                       "precision": precision.name, **({"frozen": list(frozen)} if frozen else {})})
        if ctx.progress and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{acc:.3f}", best=f"{state.best_acc:.3f}")
        if ctx.checkpoints is not None:
            ctx.checkpoints.save(stage, "last", {
                "epoch": state.epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if scaler is not None else None,
                "best_acc": state.best_acc, "best_epoch": state.best_epoch, "best_state": state.best_state,
                "stale": state.stale, "rng": {"numpy": _rng_state(rng), "torch": torch.get_rng_state()}})
        if ctx.patience and state.stale >= ctx.patience and state.epoch < epochs:
            stopped = True
            log.info("%s: no better validation accuracy for %d epochs: stopped after epoch %d of %d", stage,
                     ctx.patience, state.epoch, epochs)
            ctx.log.event("stopped_early", stage=stage, after_epoch=state.epoch, patience=ctx.patience)
            break
    model.load_state_dict(state.best_state)
    model.eval()
    result = FitResult(state.best_acc, state.best_epoch, state.epoch, epochs, stopped)
    if ctx.checkpoints is not None:
        ctx.checkpoints.save(stage, "done", {
            "model": model.state_dict(), "rng": {"numpy": _rng_state(rng), "torch": torch.get_rng_state()},
            "result": {k: getattr(result, k) for k in ("val_accuracy", "best_epoch", "epochs_run", "epochs",
                                                      "stopped_early")}})
    log.info("%s: best validation accuracy %.3f (epoch %d of %d)", stage, state.best_acc, state.best_epoch,
             state.epoch)
    ctx.results[stage] = result
    return result


def _wrap(model: nn.Module, world: int, ctx: FitContext) -> nn.Module:
    """``model`` under DDP across the ranks (its trainable parameters as they are now), or itself."""
    if world <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def _epoch(net: nn.Module, batches: Iterator[Any], opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
           precision: Precision, loss_fn: nn.Module, device: torch.device) -> tuple[float, int]:
    """One pass over the batches: (the loss summed over the targets, the number of targets)."""
    total, count = 0.0, 0
    trainable = [p for p in net.parameters() if p.requires_grad]
    for inputs, targets, weight in batches:
        inputs = tuple(x.to(device, non_blocking=True) for x in inputs)
        targets = targets.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = net(*inputs)[1]
            losses = loss_fn(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        if weight is not None:
            w = weight.to(device).reshape(-1)
            loss = (losses * w).sum() / w.sum().clamp_min(1.0)
        else:
            loss = losses.mean()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(trainable, 5.0)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            nn.utils.clip_grad_norm_(trainable, 5.0)
            opt.step()
        total += float(loss.detach()) * len(targets)
        count += len(targets)
    return total, count


def _sum_across(loss_sum: float, count: int, ctx: FitContext) -> tuple[float, int]:
    parts = ctx.dist.all_gather((loss_sum, count))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)
