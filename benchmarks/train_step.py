"""Peak memory and time of one training step of the encoders, as ``edge-mmer train`` runs it (Adam,
cross-entropy, gradient clipping), for a configuration and a batch size.

    python -m benchmarks.train_step --config paper --batch 8 --device cpu

Each encoder is measured in a fresh process (``ru_maxrss`` is a process's high-water mark), after
one warm-up step; the median of ``--repeats`` steps is the time. The speech encoder sees utterances
of ``--seconds`` (the paper configuration's longest, 8 s, by default); the face encoder a batch of
crops at the configuration's crop size (299 px for the paper's Inception-ResNet-v2).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _step(network: str, config: str, batch: int, device: str, seconds: float, repeats: int) -> dict[str, object]:
    import torch
    from torch import nn

    from edge_mmer.config import load_config
    from edge_mmer.models import FaceEncoder, SpeechEncoder

    cfg = load_config(config)
    dev = torch.device(device)
    n_classes = len(cfg.labels)
    if network == "speech_encoder":
        model: nn.Module = SpeechEncoder(cfg.audio.n_mels, n_classes, cfg.speech_encoder).to(dev)
        frames = int(seconds * cfg.audio.sample_rate / cfg.audio.hop_length)
        inputs: tuple[torch.Tensor, ...] = (torch.randn(batch, frames, cfg.audio.n_mels, device=dev),
                                            torch.full((batch,), frames, dtype=torch.long))
    else:
        model = FaceEncoder(n_classes, cfg.face_encoder, cfg.face.crop_size).to(dev)
        inputs = (torch.randn(batch, 3, cfg.face.crop_size, cfg.face.crop_size, device=dev),)
    targets = torch.randint(0, n_classes, (batch,), device=dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    model.train()
    times = []
    for i in range(repeats + 1):
        started = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(*inputs)[1], targets)
        loss.backward()  # type: ignore[no-untyped-call]  # torch types Tensor.backward loosely
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if i:  # the first step warms up
            times.append(time.perf_counter() - started)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"network": network, "config": config, "batch": batch, "device": device,
            "parameters": sum(p.numel() for p in model.parameters()), "peak_rss_mib": round(peak_mib, 1),
            "step_s_median": round(statistics.median(times), 3), "repeats": repeats,
            "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="paper")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--network", choices=("speech_encoder", "face_encoder"), default=None,
                   help="measure this one in this process (the default runs each in its own process)")
    args = p.parse_args(argv)
    if args.network:
        sys.stdout.write(json.dumps(_step(args.network, args.config, args.batch, args.device, args.seconds,
                                          args.repeats)) + "\n")
        return 0
    for network in ("speech_encoder", "face_encoder"):
        out = subprocess.run([sys.executable, "-m", "benchmarks.train_step", "--network", network,
                              "--config", args.config, "--batch", str(args.batch), "--device", args.device,
                              "--seconds", str(args.seconds), "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            return out.returncode
        sys.stdout.write(out.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
