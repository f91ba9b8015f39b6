"""The training loop: seeds, epochs of random training pairs, validation, checkpoints, resume, early stopping, DDP.

RUN_DIR layout (rank 0 writes; all writes atomic): `config.yaml` (the TrainConfig used), `metrics.csv` (one row per
epoch), `tensorboard/`, `checkpoints/last.pt` and `best.pt`, `training_curve.png`, `summary.json`, and
`checkpoints/initial.pt` (the weights before training: untrained, or those of `--init`, for comparisons),
`ranks/rank_<r>.json` (each rank's weight checksum and sample count, to check that DDP ranks agree).

Loss of one training step: `objective.compute_losses` (pose from `loss.pose_from_epoch` on, keypoint, and our
descriptor, repeatability and score terms where their weights are set), on images photometrically augmented each on
its own when `augment.enabled`. Validation (never augmented) always uses every term and scores failed elements by the
pose loss of the identity, so failing cannot look good.
Skipped elements and batches are counted with their reason and reported each epoch; nothing is swallowed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.config import ConfigError, from_dict, save_config, to_dict
from dlvf_ros.features.checkpoint import TrainingCheckpoint
from dlvf_ros.features.unet import FeatureNet
from dlvf_ros.training.augment import augment_images
from dlvf_ros.training.config import TrainConfig
from dlvf_ros.training.dataset import DatasetManifest, PairDataset
from dlvf_ros.training.distributed import (
    DistributedContext,
    EpochSubsetSampler,
    all_reduce_sum,
    barrier,
    broadcast_buffers,
)
from dlvf_ros.training.losses import nearest_match_correct, pose_error
from dlvf_ros.training.objective import TERMS, LossTerms, compute_losses
from dlvf_ros.training.pipeline import PosePipeline
from dlvf_ros.training.plots import plot_training_curve
from dlvf_ros.training.running_sums import RunningSums

REASON_FEW_INLIERS = "batch element with fewer than min_inliers inliers"
REASON_NO_ELEMENT = "batch without any element with min_inliers inliers"
REASON_NONFINITE_LOSS = "non-finite loss"
REASON_NONFINITE_GRAD = "non-finite gradient (step not taken)"
REASONS = (REASON_FEW_INLIERS, REASON_NO_ELEMENT, REASON_NONFINITE_LOSS, REASON_NONFINITE_GRAD)
RESUMABLE_CHANGES = {"epochs", "early_stopping_patience", "num_workers", "torch_threads", "device"}
METRIC_FIELDS = (
    "epoch",
    "train_loss",
    *(f"train_{term}_loss" for term in TERMS),
    "train_ok_fraction",
    "train_steps",
    "train_skipped_batches",
    "val_loss",
    *(f"val_{term}_loss" for term in TERMS),
    "val_ok_fraction",
    "val_match_accuracy",
    "val_rmse_x_m",
    "val_rmse_y_m",
    "val_rmse_heading_deg",
    "pose_loss_active",
    "seconds",
)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def weights_sha256(model: torch.nn.Module) -> str:
    """Checksum of every parameter and buffer (names, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _to_device(batch: dict, device: torch.device) -> dict:
    return {
        key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value for key, value in batch.items()
    }


class Trainer:
    """Trains a FeatureNet on a dataset built by `dlvf dataset`. `run()` returns the summary dict."""

    def __init__(
        self,
        dataset_dir: str | Path,
        run_dir: str | Path,
        config: TrainConfig | None,
        resume: bool,
        context: DistributedContext,
        init_checkpoint: str | Path | None = None,
    ) -> None:
        self.context = context
        self.run_dir = Path(run_dir)
        self.manifest = DatasetManifest.load(dataset_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        last = self.checkpoint_dir / "last.pt"
        self.state: TrainingCheckpoint | None = None  # the checkpoint resumed from
        if resume:
            if not last.is_file():
                raise FileNotFoundError(f"--resume: {last} does not exist; train without --resume first")
            self.state = TrainingCheckpoint.load(last)
            if self.state.optimizer is None:
                raise ValueError(f"--resume: {last} holds no optimizer state; start a new run with --init {last}")
            saved = from_dict(TrainConfig, self.state.config, f"{last}: config")
            if config is not None:
                changed = sorted(
                    k for k, v in to_dict(config).items() if to_dict(saved)[k] != v and k not in RESUMABLE_CHANGES
                )
                if changed:
                    raise ConfigError(
                        f"--resume: {changed} differ from the config {last} was trained with; only "
                        f"{sorted(RESUMABLE_CHANGES)} may change on resume"
                    )
            config = config or saved
            if self.state.data_hash != self.manifest.data_hash:
                raise ValueError(
                    f"--resume: {last} was trained on dataset {str(self.state.data_hash)[:12]}, but {dataset_dir} is "
                    f"{self.manifest.data_hash[:12]}; resume with the original dataset"
                )
        elif last.is_file():
            raise FileExistsError(f"{self.run_dir} already holds a training run; pass --resume or choose a new --out")
        self.config = config or TrainConfig()
        torch.set_num_threads(self.config.torch_threads)
        seed_everything(self.config.seed + context.rank)
        self.network = FeatureNet(self.config.model).to(context.device)
        if resume and init_checkpoint is not None:
            raise ValueError("--init starts a new run from a checkpoint's weights; it cannot be combined with --resume")
        self.init_from = self.state.init_from if self.state else None
        if self.state is not None:
            self.network.load_state_dict(self.state.model)
        elif init_checkpoint is not None:
            self.init_from = self._load_initial_weights(Path(init_checkpoint))
        model: torch.nn.Module = self.network
        if context.distributed:
            device_ids = [context.device.index] if context.device.type == "cuda" else None
            model = DistributedDataParallel(self.network, device_ids=device_ids)
        self.pipeline = PosePipeline(model, self.config.pipeline)
        self.validation_pipeline = PosePipeline(self.network, self.config.pipeline)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate)
        if self.state is not None and self.state.optimizer is not None:
            self.optimizer.load_state_dict(self.state.optimizer)
        self.train_loader = self._loader("train", self.config.train_samples_per_epoch)
        self.validation_loader = self._loader("validation", self.config.validation_samples_per_epoch)
        self.rows = self._previous_rows()
        # this rank's skip counts; rank 0 carries the totals of a resumed run, so the all-rank sum stays right
        self.skipped: Counter = Counter(self.state.skipped) if self.state and context.is_main else Counter()
        self.samples_seen = 0
        self.initial_validation = self.state.initial_validation if self.state else None
        if self.state is None and context.is_main:  # the weights before training, for before/after comparisons
            self._checkpoint(-1, float("inf"), 0, {}).save(self.checkpoint_dir / "initial.pt")

    # --- set-up --------------------------------------------------------------------------------------------------
    def _load_initial_weights(self, path: Path) -> dict:
        """Weights of another run's checkpoint as the starting point (fine-tuning); returns its provenance."""
        if not path.is_file():
            raise FileNotFoundError(
                f"--init: {path} does not exist; pass a training checkpoint (RUN/checkpoints/last.pt)"
            )
        state = TrainingCheckpoint.load(path)  # CheckpointError (a ValueError) names an unreadable file
        network = state.network()
        if network.conf["m"] != self.network.conf["m"]:
            raise ValueError(
                f"--init: {path} holds a network {dict(network.conf)}, but the config builds "
                f"{dict(self.network.conf)}; set `model:` in the config to match (at least the same m)"
            )
        # same width m: every tensor of the same name and shape is taken (all of them for the same architecture;
        # the encoder, which gives the descriptors, when only the decoders or the cell differ)
        own = self.network.state_dict()
        taken = {k: v for k, v in network.state_dict().items() if k in own and own[k].shape == v.shape}
        self.network.load_state_dict(taken, strict=False)
        return {
            "path": str(path),
            "epoch": state.epoch,
            "data_hash": state.data_hash,
            "weights_sha256": weights_sha256(self.network),
            "model_config": dict(network.conf),
            "fresh_parameters": sorted({k.rsplit(".", 2)[0] for k in own if k not in taken}),
        }

    def _loader(self, split: str, samples: int) -> DataLoader:
        dataset = PairDataset(self.manifest, split)
        sampler = EpochSubsetSampler(dataset, samples, self.context.world_size, self.context.rank, self.config.seed)
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            num_workers=self.config.num_workers,
            pin_memory=self.context.device.type == "cuda",
            persistent_workers=self.config.num_workers > 0,
        )

    def _previous_rows(self) -> list[dict]:
        path = self.run_dir / "metrics.csv"
        if self.state is None or not path.is_file():
            return []
        with open(path, newline="") as handle:
            return [row for row in csv.DictReader(handle) if int(row["epoch"]) <= self.state.epoch]

    # --- one batch -----------------------------------------------------------------------------------------------
    def _losses(self, result, T_gt: torch.Tensor, with_pose: bool, score_failures: bool) -> LossTerms:
        return compute_losses(result, T_gt, self.config.loss, with_pose, score_failures)

    def _augmented(self, batch: dict) -> dict:
        """The batch with each image photometrically augmented on its own (`config.augment`; geometry unchanged)."""
        if not self.config.augment.enabled:
            return batch
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))  # from the epoch's seed
        return {
            **batch,
            "image_source": augment_images(batch["image_source"], generator, self.config.augment),
            "image_target": augment_images(batch["image_target"], generator, self.config.augment),
        }

    def _train_step(self, batch: dict, with_pose: bool) -> dict:
        result = self.pipeline(self._augmented(batch))
        losses = self._losses(result, batch["T_target_source"], with_pose, score_failures=False)
        n_few = int((~result.ok).sum())
        if n_few:
            self.skipped[REASON_FEW_INLIERS] += n_few
        reason = None
        if losses.n_ok == 0:
            reason = REASON_NO_ELEMENT
        elif not bool(torch.isfinite(losses.total)):
            reason = REASON_NONFINITE_LOSS
        # every rank runs backward through the anchor (a zero tied to all outputs) so DDP's gradient sync completes
        loss = result.anchor if reason else losses.total + result.anchor
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        if reason is None:
            grads_finite = all(
                bool(torch.isfinite(p.grad).all()) for p in self.network.parameters() if p.grad is not None
            )
            if grads_finite:
                torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.config.grad_clip_norm)
                self.optimizer.step()
            else:
                reason = REASON_NONFINITE_GRAD
        if reason:
            self.skipped[reason] += 1
        return {
            **losses.values(),
            "n_ok": float(losses.n_ok),
            "size": len(batch["index"]),
            "skipped": reason is not None,
        }

    # --- epochs --------------------------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int, with_pose: bool) -> dict:
        self.network.train()
        sampler = self.train_loader.sampler
        assert isinstance(sampler, EpochSubsetSampler)  # built by _loader
        sampler.set_epoch(epoch)
        torch.manual_seed(self.config.seed + 7919 * epoch + self.context.rank)
        # loss terms weighted by the elements they averaged over (n_ok), so the epoch mean is per element
        sums = RunningSums(("total", *TERMS, "n_ok", "n", "steps", "skipped_batches"))
        progress = tqdm(
            self.train_loader, desc=f"epoch {epoch} train", unit="batch", leave=False, disable=not self.context.is_main
        )
        for batch in progress:
            step = self._train_step(_to_device(batch, self.context.device), with_pose)
            self.samples_seen += step["size"]
            sums.add(n=step["size"])
            if step["skipped"]:
                sums.add(skipped_batches=1)
            else:
                sums.add(steps=1, n_ok=step["n_ok"], **{k: step[k] * step["n_ok"] for k in ("total", *TERMS)})
            progress.set_postfix(loss=f"{step['total']:.4g}", ok=f"{int(step['n_ok'])}/{step['size']}")
        sums = sums.reduced(self.context)
        return {
            "train_loss": sums.ratio("total", "n_ok"),
            **{f"train_{term}_loss": sums.ratio(term, "n_ok") for term in TERMS},
            "train_ok_fraction": sums.ratio("n_ok", "n"),
            "train_steps": int(sums["steps"]),
            "train_skipped_batches": int(sums["skipped_batches"]),
        }

    @torch.no_grad()
    def validate(self) -> dict:
        """Validation metrics over the fixed validation subset (all ranks, reduced; rank 0's BatchNorm statistics)."""
        broadcast_buffers(self.network, self.context)
        self.network.eval()
        # pose: over every element (failures count); keypoint: over ok elements; the others: per element
        sums = RunningSums(
            ("pose", "keypoint", "descriptor", "repeatability", "score", "n_ok", "n", "sq_x", "sq_y", "sq_heading")
            + ("correct_matches", "visible")
        )
        for batch in tqdm(
            self.validation_loader, desc="validation", unit="batch", leave=False, disable=not self.context.is_main
        ):
            batch = _to_device(batch, self.context.device)
            result = self.validation_pipeline(batch)
            losses = self._losses(result, batch["T_target_source"], with_pose=True, score_failures=True)
            xi = pose_error(result.T_est, batch["T_target_source"])[result.ok].double()
            n = len(batch["index"])
            correct = nearest_match_correct(
                result.descriptors_source,
                result.descriptors_target,
                result.keypoints_target,
                result.uv_expected,
                self.config.loss.descriptor_exclusion_px,
            )
            sums.add(
                pose=float(losses.pose_per_element.sum()),
                keypoint=float(losses.keypoint) * float(losses.n_ok),
                n_ok=float(losses.n_ok),
                n=n,
                sq_x=float((xi[:, 0] ** 2).sum()),
                sq_y=float((xi[:, 1] ** 2).sum()),
                sq_heading=float((torch.rad2deg(xi[:, 5]) ** 2).sum()),
                correct_matches=float((correct & result.visible).sum()),
                visible=float(result.visible.sum()),
                **{term: float(getattr(losses, term)) * n for term in ("descriptor", "repeatability", "score")},
            )
        sums = sums.reduced(self.context)
        n_ok = sums["n_ok"]
        rmse = [float(np.sqrt(sums[k] / n_ok)) if n_ok else float("nan") for k in ("sq_x", "sq_y", "sq_heading")]
        terms = {
            "pose": sums.ratio("pose", "n"),
            "keypoint": sums.ratio("keypoint", "n_ok"),
            **{term: sums.ratio(term, "n") for term in ("descriptor", "repeatability", "score")},
        }
        loss = self.config.loss
        return {
            "val_loss": loss.pose_scale * terms["pose"]
            + loss.keypoint_weight * terms["keypoint"]
            + loss.descriptor_weight * terms["descriptor"]
            + loss.repeatability_weight * terms["repeatability"]
            + loss.score_weight * terms["score"],
            **{f"val_{term}_loss": value for term, value in terms.items()},
            "val_ok_fraction": sums.ratio("n_ok", "n"),
            "val_match_accuracy": sums.ratio("correct_matches", "visible"),
            "val_rmse_x_m": rmse[0],
            "val_rmse_y_m": rmse[1],
            "val_rmse_heading_deg": rmse[2],
        }

    def skipped_totals(self) -> dict[str, int]:
        """Skip counts per reason summed over all ranks (a collective: every rank must call it)."""
        counts = all_reduce_sum(torch.tensor([self.skipped[r] for r in REASONS], dtype=torch.float64), self.context)
        return {reason: int(count) for reason, count in zip(REASONS, counts) if count > 0}

    # --- outputs -------------------------------------------------------------------------------------------------
    def _checkpoint(self, epoch: int, best_val: float, stale_epochs: int, skipped: dict) -> TrainingCheckpoint:
        return TrainingCheckpoint(
            model=self.network.state_dict(),
            optimizer=self.optimizer.state_dict(),
            epoch=epoch,
            config=to_dict(self.config),
            model_config=dict(self.network.conf),
            data_hash=self.manifest.data_hash,
            best_val=best_val,
            stale_epochs=stale_epochs,
            skipped=skipped,
            image_size=list(self.manifest.image_size),
            rig=self.manifest.rig(0).to_dict(),
            initial_validation=self.initial_validation,
            init_from=self.init_from,
        )

    def _write_metrics(self, row: dict, writer, initial_val_loss: float) -> None:
        self.rows.append({k: row[k] for k in METRIC_FIELDS})
        text = io.StringIO()
        csv_writer = csv.DictWriter(text, fieldnames=METRIC_FIELDS)
        csv_writer.writeheader()
        csv_writer.writerows(self.rows)
        fileio.atomic_write_text(self.run_dir / "metrics.csv", text.getvalue())
        for key in METRIC_FIELDS[1:]:
            writer.add_scalar(key, float(row[key]), int(row["epoch"]))
        writer.flush()
        plot_training_curve(self.rows, self.run_dir / "training_curve.png", initial_val_loss)

    def _write_rank_report(self) -> None:
        report = {
            "rank": self.context.rank,
            "world_size": self.context.world_size,
            "weights_sha256": weights_sha256(self.network),
            "samples_seen": self.samples_seen,
        }
        fileio.atomic_write_text(
            self.run_dir / "ranks" / f"rank_{self.context.rank}.json", json.dumps(report, indent=1)
        )

    # --- the loop ------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        config, context = self.config, self.context
        start_epoch = self.state.epoch + 1 if self.state else 0
        best_val = self.state.best_val if self.state else float("inf")
        stale_epochs = self.state.stale_epochs if self.state else 0
        writer = None
        if context.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, self.run_dir / "config.yaml")
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        started, stopped_early, epoch = time.monotonic(), False, start_epoch - 1
        # the validation metrics before training (untrained or --init weights), the baseline of every later epoch
        if self.initial_validation is None:
            self.initial_validation = self.validate()
            if context.is_main:
                tqdm.write(
                    f"before training: val {self.initial_validation['val_loss']:.4g}, "
                    f"val ok {self.initial_validation['val_ok_fraction']:.0%}"
                )
        initial_val_loss = float(self.initial_validation["val_loss"])
        for epoch in range(start_epoch, config.epochs):
            epoch_start = time.monotonic()
            with_pose = epoch >= config.loss.pose_from_epoch
            row = {
                "epoch": epoch,
                **self._train_epoch(epoch, with_pose),
                **self.validate(),
                "pose_loss_active": int(with_pose),
            }
            row["seconds"] = time.monotonic() - epoch_start
            improved = row["val_loss"] < best_val
            best_val, stale_epochs = (row["val_loss"], 0) if improved else (best_val, stale_epochs + 1)
            skipped_totals = self.skipped_totals()
            if context.is_main:
                checkpoint = self._checkpoint(epoch, best_val, stale_epochs, skipped_totals)
                if improved:
                    checkpoint.save(self.checkpoint_dir / "best.pt")
                checkpoint.save(self.checkpoint_dir / "last.pt")
                self._write_metrics(row, writer, initial_val_loss)
                skipped = ", ".join(f"{reason}: {count}" for reason, count in skipped_totals.items()) or "none"
                tqdm.write(
                    f"epoch {epoch}: train {row['train_loss']:.4g}, val {row['val_loss']:.4g} (best {best_val:.4g}), "
                    f"val ok {row['val_ok_fraction']:.0%}, skipped so far: {skipped}"
                )
            barrier(context)
            if stale_epochs >= config.early_stopping_patience:
                stopped_early = True
                break
        self._write_rank_report()
        summary = {
            "epochs_completed": epoch + 1,
            "best_val_loss": best_val,
            "stopped_early": stopped_early,
            "initial_validation": self.initial_validation,
            "skipped": self.skipped_totals(),
            "world_size": context.world_size,
            "data_hash": self.manifest.data_hash,
            "init_from": self.init_from,
            "seconds": time.monotonic() - started,
            "final_epoch": self.rows[-1] if self.rows else None,
        }
        if writer is not None:  # rank 0
            writer.close()
            fileio.atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=1, default=str))
        barrier(context)
        return summary
