"""Long runs: checkpoints, --resume after a SIGKILL, early stopping, the training log and curves,
the bad-input refusals (another run's checkpoints, a torn checkpoint, nothing to resume), and
--face-init from a real timm state dict (or a file that is not one)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs torch (the 'train' extra)")  # for the imports below

import torch
from support.cli import CLI, run_cli, spawn
from support.configs import TINY, TINY_TOML

from edge_mmer.bundle import read_bundle
from edge_mmer.config import TrainConfig, paper_config
from edge_mmer.errors import TrainError, WeightsError
from edge_mmer.models import FaceEncoder
from edge_mmer.train import TrainOptions, train
from edge_mmer.train.face_init import load_face_init
from edge_mmer.train.history import read_log

pytestmark = [pytest.mark.needs_torch]

#: One more epoch per network than TINY, so a kill lands inside a stage.
LONGER = replace(TINY, train=TrainConfig(speech_epochs=3, face_epochs=3, context_epochs=3, fusion_epochs=3,
                                         batch_size=16))


def _opts(dataset: Path, out: Path, **kw: object) -> TrainOptions:
    return TrainOptions(dataset=dataset, out=out, seed=1, device="cpu", progress=False, ablation=False, **kw)  # type: ignore[arg-type]


def test_checkpoints_log_and_curves(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = train(TINY, _opts(dataset, out, patience=1))
    bundle = read_bundle(result.bundle_dir, verify=True)
    ckpt = tmp_path / "b.checkpoints"
    assert (ckpt / "run.json").is_file() and (ckpt / "finished.json").is_file()
    stages = {"speech_encoder", "face_encoder", "speech_context", "face_context", "fusion"}
    assert {p.name.split(".")[0] for p in ckpt.glob("*.done.pt")} == stages and not list(ckpt.glob("*.last.pt"))
    assert bundle.read_bytes("reports/curves.png")[:8] == b"\x89PNG\r\n\x1a\n"
    rows = read_log(bundle.read_bytes("reports/train_log.jsonl").decode())
    epochs = [r for r in rows if "epoch" in r]
    assert {r["stage"] for r in epochs} == stages
    assert all(r["precision"] == "fp32" and r["world_size"] == 1 and r["loss"] >= 0 for r in epochs)
    training = result.metrics["training"]
    for stage, r in training.items():
        assert 1 <= r["best_epoch"] <= r["epochs_run"] <= r["epochs"], stage
        if r["stopped_early"]:  # patience 1: stopped one epoch after its best
            assert r["epochs_run"] == r["best_epoch"] + 1 < r["epochs"] + 1
    # a finished run: nothing to resume, and a new run may reuse the directory
    with pytest.raises(TrainError, match=r"finished.*nothing to resume"):
        train(TINY, _opts(dataset, tmp_path / "c", checkpoint_dir=ckpt, resume=True))


def test_resume_refuses_nothing_another_run_and_a_torn_checkpoint(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match=r"--resume: nothing to resume in .*empty"):
        train(TINY, _opts(dataset, tmp_path / "x", checkpoint_dir=tmp_path / "empty", resume=True))
    ckpt = tmp_path / "ck"
    train(TINY, _opts(dataset, tmp_path / "z", checkpoint_dir=ckpt))
    (ckpt / "finished.json").unlink()  # as if killed before the bundle
    with pytest.raises(TrainError, match=r"from another run \(seed: 1 in the checkpoint, 2 now\)"):
        train(TINY, replace(_opts(dataset, tmp_path / "y", checkpoint_dir=ckpt, resume=True), seed=2))
    other = replace(TINY, train=replace(TINY.train, batch_size=8))
    with pytest.raises(TrainError, match=r"config\.train\.batch_size: 16 in the checkpoint, 8 now"):
        train(other, _opts(dataset, tmp_path / "y", checkpoint_dir=ckpt, resume=True))
    with pytest.raises(TrainError, match="checkpoints of an earlier run: --resume to continue it, --overwrite"):
        train(TINY, _opts(dataset, tmp_path / "y", checkpoint_dir=ckpt))
    # its first stage's checkpoint torn (as a kill mid-write would leave it, were the write not
    # atomic) is refused naming the file; no bundle is left behind
    done = ckpt / "speech_encoder.done.pt"
    done.write_bytes(done.read_bytes()[: done.stat().st_size // 3])
    with pytest.raises(TrainError, match=r"speech_encoder\.done\.pt is truncated or corrupt"):
        train(TINY, _opts(dataset, tmp_path / "w", checkpoint_dir=ckpt, resume=True))
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_sigkill_after_the_first_checkpoint_then_resume(dataset: Path, tmp_path: Path) -> None:
    """A real process killed (SIGKILL) once it has written its first checkpoint; ``--resume`` with the
    same checkpoint directory says it resumed and writes a bundle that verifies."""
    toml = tmp_path / "longer.toml"
    toml.write_text(TINY_TOML.replace("speech_epochs = 2", "speech_epochs = 3").replace("face_epochs = 2",
                                                                                       "face_epochs = 3"))
    ckpt, out = tmp_path / "ck", tmp_path / "b"
    args = ["train", "--dataset", f"synthetic:{dataset}", "--config", str(toml), "--out", str(out), "--device", "cpu",
            "--no-ablation", "--no-progress", "--checkpoint-dir", str(ckpt)]
    with spawn([*CLI, *args], env={**os.environ, "OMP_NUM_THREADS": "1"}) as child:
        assert child.wait_for(lambda: any(ckpt.glob("*.pt")), timeout=120), child.tail()
        child.kill()
    assert child.returncode == -9
    assert not out.exists() and not (ckpt / "finished.json").exists()
    done_before = {p.name for p in ckpt.glob("*.pt")}
    resumed = run_cli(*args, "--resume", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed the run in {ckpt}" in resumed.stdout
    read_bundle(out, verify=True)
    rows = read_log((ckpt / "train_log.jsonl").read_text())
    assert any(r.get("event") == "resumed_run" for r in rows)
    assert done_before  # what the killed run had saved was there to resume from


# ------------------------------------------------------------------------------------- face-init


@pytest.fixture(scope="module")
def timm_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    timm = pytest.importorskip("timm", reason="timm (a dev dependency) builds the reference state dict")
    from safetensors.torch import save_file

    ref = timm.create_model("inception_resnet_v2", pretrained=False)
    path = tmp_path_factory.mktemp("timm") / "irv2.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    return path


def test_face_init_from_a_real_timm_state_dict(timm_file: Path) -> None:
    cfg = paper_config()
    model = FaceEncoder(len(cfg.labels), cfg.face_encoder, 96)
    init = load_face_init(str(timm_file), model)
    assert init.provenance["kind"] == "file" and len(init.provenance["sha256"]) == 64
    sd = init.state
    assert torch.equal(model.backbone.conv2d_1a.conv.weight, sd["conv2d_1a.conv.weight"])


def test_face_init_that_is_not_a_matching_state_dict_is_refused(timm_file: Path, tmp_path: Path) -> None:
    cfg = paper_config()
    model = FaceEncoder(len(cfg.labels), cfg.face_encoder, 96)
    from safetensors.torch import load_file, save_file

    sd = load_file(str(timm_file))
    sd["extra.weight"] = torch.zeros(3)
    del sd["conv2d_7b.conv.weight"]
    bad = tmp_path / "other.safetensors"
    save_file(sd, str(bad))
    with pytest.raises(WeightsError, match=r"other\.safetensors.*1 missing keys.*conv2d_7b\.conv\.weight.*"
                                           r"1 unexpected keys.*extra\.weight"):
        load_face_init(str(bad), model)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"junk\.pth"):
        load_face_init(str(junk), model)
    with pytest.raises(WeightsError, match="no such file"):
        load_face_init(str(tmp_path / "absent.safetensors"), model)
    with pytest.raises(WeightsError, match=r"width is 0\.5"):  # the demo backbone is narrower than timm's
        load_face_init(str(timm_file), FaceEncoder(7, replace(cfg.face_encoder, width=0.5), 96))


def test_cli_face_init_refusal_names_the_file(dataset: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    cli = run_cli("train", "--dataset", f"synthetic:{dataset}", "--out", str(tmp_path / "b"), "--face-init", str(junk),
                  "--no-progress", "--device", "cpu")
    assert cli.returncode == 1 and "junk.safetensors" in cli.stderr, cli.stderr
    assert not (tmp_path / "b").exists()
