"""torchrun / DistributedDataParallel on CPU (gloo): one bundle from two processes, close to the
single-process run; ranks that disagree on the dataset fail alike with a clear error; the batch plan
split across ranks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs torch (the 'train' extra)")  # for the imports below

from support.cli import CLI, run_cli
from support.configs import TINY_TOML
from support.paths import ROOT

from edge_mmer.bundle import read_bundle
from edge_mmer.train.batches import epoch_plan, shard_plan

pytestmark = [pytest.mark.needs_torch]


def test_shard_plan_splits_every_batch_and_skips_alike() -> None:
    plan = epoch_plan(21, 8, np.random.default_rng(0))
    assert [len(b) for b, _ in plan] == [8, 8, 5]
    parts = [shard_plan(plan, rank, 2, 3) for rank in (0, 1)]
    assert [len(p) for p in parts] == [2, 2]  # the last batch (5 -> 3 + 2) is below min_batch 3: skipped on both
    for (a, seed_a), (b, seed_b), (whole, seed) in zip(parts[0], parts[1], plan, strict=False):
        assert seed_a == seed_b == seed and sorted([*a, *b]) == sorted(whole)
    assert [(list(b), s) for b, s in shard_plan(plan, 0, 1, 1)] == [(list(b), s) for b, s in plan]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _final(out: Path) -> float:
    return float(json.loads((out / "reports" / "metrics.json").read_text())["test_accuracy"]["final"])


@pytest.mark.slow
def test_torchrun_two_processes_write_one_bundle(dataset: Path, tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    args = ["train", "--dataset", f"synthetic:{dataset}", "--config", str(tmp_path / "tiny.toml"), "--device", "cpu",
            "--no-ablation", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "edge_mmer.cli", *args,
                          "--out", str(tmp_path / "ddp")], capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env=env, check=False)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("bundle written to") == 1  # rank 0 reports, rank 1 is silent
    assert "rank 1: encoders trained; rank 0 writes the bundle" in ddp.stderr
    read_bundle(tmp_path / "ddp", verify=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "ddp.checkpoints", "tiny.toml"]
    log = [json.loads(line) for line in (tmp_path / "ddp" / "reports" / "train_log.jsonl").read_text().splitlines()]
    assert {r["world_size"] for r in log if r.get("stage") in ("speech_encoder", "face_encoder")} == {2}
    one = run_cli(*args, "--out", str(tmp_path / "one"), timeout=600, env={"OMP_NUM_THREADS": "1"})
    assert one.returncode == 0, one.stderr[-3000:]
    # 8 test utterances: one utterance is 12.5 points; the two runs see the same data in other batches
    assert abs(_final(tmp_path / "ddp") - _final(tmp_path / "one")) <= 0.25


@pytest.mark.slow
def test_ranks_that_disagree_on_the_dataset_fail_alike(dataset: Path, tmp_path: Path) -> None:
    """Two ranks started as torchrun starts them (RANK, WORLD_SIZE, MASTER_ADDR/PORT), each given
    another dataset: both stop with the same error naming the rank, and nothing is written."""
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    index = other / "utterances.jsonl"
    index.write_text("".join(index.read_text().splitlines(keepends=True)[1:]))  # one utterance fewer
    port = str(_free_port())
    procs = []
    for rank, data in ((0, dataset), (1, other)):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([*CLI, "train", "--dataset", f"synthetic:{data}", "--out", str(tmp_path / "b"),
                                       "--device", "cpu", "--no-progress"], cwd=ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 1, err[-2000:]
        assert "rank(s) 1 of 2 see another dataset than rank 0" in err, err[-2000:]
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.checkpoints").exists()


def test_loader_workers_build_the_same_batches() -> None:
    """Batches built in DataLoader worker processes equal the in-process ones (a batch depends on its
    indices and seed alone), so --loader-workers does not change the run."""
    import torch

    from edge_mmer.train.batches import EpochLoader
    from edge_mmer.train.sequences import SequenceBatches

    rng = np.random.default_rng(0)
    seqs = [[rng.standard_normal(6).astype(np.float32) for _ in range(int(n))] for n in rng.integers(1, 5, 12)]
    labels = [[int(v) for v in rng.integers(0, 3, len(s))] for s in seqs]
    source = SequenceBatches(seqs, labels, 0.1)
    keys = epoch_plan(len(source), 4, np.random.default_rng(1))
    here = list(EpochLoader(source, 0).epoch(keys))
    there = list(EpochLoader(source, 2).epoch(keys))
    assert len(here) == len(there) == 3
    for (xa, ya, wa), (xb, yb, wb) in zip(here, there, strict=True):
        assert torch.equal(xa[0], xb[0]) and torch.equal(ya, yb) and wa is not None and wb is not None
        assert torch.equal(wa, wb)
