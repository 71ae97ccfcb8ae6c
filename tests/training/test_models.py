"""The torch networks: shapes, training steps, timm parity, packing, step/sequence equivalence, ONNX export."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the networks are torch's")  # for the imports below

import torch
from torch import nn

from edge_mmer.config import FaceEncoderConfig, ModelConfig, demo_config, paper_config
from edge_mmer.models import (
    MIN_INPUT_SIZE,
    ContextLSTM,
    FaceEncoder,
    FusionLSTM,
    InceptionResNetV2,
    SpeechEncoder,
    WeightsError,
    count_parameters,
    feature_map_size,
)
from edge_mmer.models.inception_resnet_v2 import BasicConv2d

pytestmark = pytest.mark.needs_torch

N_CLASSES = 6


def _build(cfg: ModelConfig) -> tuple[SpeechEncoder, FaceEncoder, ContextLSTM, ContextLSTM, FusionLSTM]:
    speech = SpeechEncoder(cfg.audio.n_mels, N_CLASSES, cfg.speech_encoder)
    face = FaceEncoder(N_CLASSES, cfg.face_encoder, cfg.face.crop_size)
    ctx_s = ContextLSTM(speech.feature_dim, N_CLASSES, cfg.context)
    ctx_f = ContextLSTM(face.feature_dim, N_CLASSES, cfg.context)
    fusion = FusionLSTM(ctx_s.feature_dim // 2 + ctx_f.feature_dim // 2, N_CLASSES, cfg.fusion)
    return speech, face, ctx_s, ctx_f, fusion


def _train_step(model: nn.Module, loss_fn: object) -> None:
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    loss = loss_fn()  # type: ignore[operator]
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert changed and "head.weight" in changed


# ---------------------------------------------------------------------------------------------------
# configs, shapes, training steps


@pytest.mark.parametrize("preset", ["demo", "paper"])
def test_presets_build_and_small_nets_run(preset: str) -> None:
    torch.manual_seed(0)
    cfg = demo_config() if preset == "demo" else paper_config()
    speech, face, ctx_s, ctx_f, fusion = _build(cfg)
    assert speech.feature_dim == cfg.speech_encoder.lstm_hidden
    assert face.feature_dim == cfg.face_encoder.embedding_dim
    assert fusion.feature_dim == cfg.fusion.fc
    for m in (speech, face, ctx_s, ctx_f, fusion):
        assert count_parameters(m) > 0
        m.eval()
    with torch.no_grad():
        feats, logits = speech(torch.randn(3, 120, cfg.audio.n_mels))
        assert feats.shape == (3, cfg.speech_encoder.lstm_hidden) and logits.shape == (3, N_CLASSES)
        out, logits, (h, c) = ctx_s(torch.randn(2, 5, speech.feature_dim))
        assert out.shape == (2, 5, cfg.context.hidden) and logits.shape == (2, 5, N_CLASSES)
        assert h.shape == c.shape == (1, 2, cfg.context.hidden)
        out, logits, (h, c) = fusion(torch.randn(2, 5, fusion.input_dim))
        assert out.shape == (2, 5, cfg.fusion.fc) and logits.shape == (2, 5, N_CLASSES)
        assert h.shape == (1, 2, cfg.fusion.hidden)


def test_paper_counts() -> None:
    face = FaceEncoder(N_CLASSES, paper_config().face_encoder, 299)
    # timm's inception_resnet_v2 without its 1000-way classifier, plus embed and head
    assert count_parameters(face.backbone) == 55_843_464 - (1536 * 1000 + 1000)
    assert count_parameters(face) == count_parameters(face.backbone) + 1536 * 256 + 256 + 256 * N_CLASSES + N_CLASSES


def test_demo_face_forward_at_crop_96() -> None:
    torch.manual_seed(0)
    cfg = demo_config()
    face = FaceEncoder(N_CLASSES, cfg.face_encoder, cfg.face.crop_size)
    assert feature_map_size(96) == 1
    x = torch.randn(2, 3, cfg.face.crop_size, cfg.face.crop_size)
    emb, logits = face.eval()(x)
    assert emb.shape == (2, cfg.face_encoder.embedding_dim) and logits.shape == (2, N_CLASSES)
    assert bool((emb >= 0).all())
    assert face.backbone.forward_features(x).shape == (2, face.backbone.num_features, 1, 1)
    _train_step(face, lambda: nn.functional.cross_entropy(face(x)[1], torch.tensor([0, 1])))


def test_face_min_input_size() -> None:
    assert MIN_INPUT_SIZE == 75
    fcfg = FaceEncoderConfig(width=0.125, repeats=(0, 0, 0), embedding_dim=8)
    with pytest.raises(ValueError, match="too small"):
        FaceEncoder(N_CLASSES, fcfg, 74)
    face = FaceEncoder(N_CLASSES, fcfg, MIN_INPUT_SIZE).eval()
    with torch.no_grad():
        assert face(torch.randn(1, 3, 75, 75))[0].shape == (1, 8)


def test_width_scaling_keeps_shapes_consistent() -> None:
    for width in (0.125, 0.3, 0.5):
        net = InceptionResNetV2(num_classes=3, width=width, repeats=(1, 2, 1)).eval()
        with torch.no_grad():
            assert net(torch.randn(1, 3, 80, 80)).shape == (1, 3)
        assert all(m.out_channels % 8 == 0 for m in net.modules() if isinstance(m, BasicConv2d))


def test_paper_face_training_step_299() -> None:
    torch.manual_seed(0)
    face = FaceEncoder(N_CLASSES, paper_config().face_encoder, 299)
    x = torch.randn(2, 3, 299, 299)
    y = torch.tensor([1, 4])
    _train_step(face, lambda: nn.functional.cross_entropy(face(x)[1], y))


def test_paper_speech_training_step() -> None:
    torch.manual_seed(0)
    cfg = paper_config()
    speech = SpeechEncoder(cfg.audio.n_mels, N_CLASSES, cfg.speech_encoder)
    x = torch.randn(4, 200, cfg.audio.n_mels)
    lengths = torch.tensor([200, 150, 90, 31])
    y = torch.tensor([0, 1, 2, 3])
    _train_step(speech, lambda: nn.functional.cross_entropy(speech(x, lengths)[1], y))


# ---------------------------------------------------------------------------------------------------
# timm compatibility


@pytest.fixture(scope="module")
def timm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, Path]:
    timm = pytest.importorskip("timm", reason="timm (a dev dependency) is needed for the timm parity tests")
    from safetensors.torch import save_file

    torch.manual_seed(1234)
    ref = timm.create_model("inception_resnet_v2", pretrained=False).eval()
    # random but non-trivial BN statistics so eval-mode BN is exercised
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    d = tmp_path_factory.mktemp("timm")
    sd = {k: v.contiguous() for k, v in ref.state_dict().items()}
    st_path = d / "inception_resnet_v2.safetensors"
    save_file(sd, str(st_path))
    pth_path = d / "inception_resnet_v2.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, pth_path)
    return ref, st_path, pth_path


def test_timm_state_dict_parity(timm_checkpoint: tuple[Any, Path, Path]) -> None:
    from safetensors.torch import load_file

    ref, st_path, _ = timm_checkpoint
    ours = InceptionResNetV2(num_classes=1000, width=1.0, repeats=(10, 20, 9))
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(our_sd) == list(ref_sd)
    assert all(our_sd[k].shape == ref_sd[k].shape for k in ref_sd)
    assert ours.num_features == 1536
    ours.load_state_dict(load_file(str(st_path)), strict=True)
    ours.eval()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 299, 299)
    with torch.no_grad():
        f_ref = ref.forward_features(x)
        f_ours = ours.forward_features(x)
        assert f_ours.shape == (2, 1536, 8, 8)
        torch.testing.assert_close(f_ours, f_ref, rtol=0, atol=1e-6)
        torch.testing.assert_close(ours.forward_head(f_ours), ref.forward_head(f_ref), rtol=0, atol=1e-6)


def test_face_encoder_loads_timm_weights(timm_checkpoint: tuple[Any, Path, Path]) -> None:
    ref, st_path, pth_path = timm_checkpoint
    face = FaceEncoder(N_CLASSES, paper_config().face_encoder, 299)
    assert face.load_timm_weights(pth_path) == ["classif.weight", "classif.bias"]
    assert sorted(face.load_timm_weights(st_path)) == ["classif.bias", "classif.weight"]
    ref_sd = ref.state_dict()
    assert all(torch.equal(v, ref_sd[k]) for k, v in face.backbone.state_dict().items())
    face.eval()
    torch.manual_seed(1)
    x = torch.randn(1, 3, 299, 299)
    with torch.no_grad():
        expected = ref.forward_head(ref.forward_features(x), pre_logits=True)
        torch.testing.assert_close(face.pooled(x), expected, rtol=0, atol=1e-6)


def test_load_timm_weights_errors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    demo = FaceEncoder(N_CLASSES, demo_config().face_encoder, 96)
    save_file({"conv2d_1a.conv.weight": torch.zeros(32, 3, 3, 3)}, str(tmp_path / "partial.safetensors"))
    with pytest.raises(WeightsError, match=r"width is 0\.125"):
        demo.load_timm_weights(tmp_path / "partial.safetensors")
    shallow = FaceEncoder(N_CLASSES, FaceEncoderConfig(width=1.0, repeats=(0, 0, 0)), 96)
    with pytest.raises(WeightsError, match=r"missing keys \[conv2d_1a\.bn\.weight"):
        shallow.load_timm_weights(tmp_path / "partial.safetensors")
    save_file({"conv2d_1a.conv.weight": torch.zeros(16, 3, 3, 3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsError, match=r"conv2d_1a\.conv\.weight: checkpoint"):
        shallow.load_timm_weights(tmp_path / "bad.safetensors")
    (tmp_path / "w.onnx").write_bytes(b"")
    with pytest.raises(WeightsError, match="unknown checkpoint format"):
        shallow.load_timm_weights(tmp_path / "w.onnx")
    with pytest.raises(FileNotFoundError):
        shallow.load_timm_weights(tmp_path / "absent.pth")


# ---------------------------------------------------------------------------------------------------
# speech packing, recurrent step/sequence equivalence


def test_speech_padding_does_not_change_features() -> None:
    torch.manual_seed(0)
    cfg = demo_config()
    speech = SpeechEncoder(cfg.audio.n_mels, N_CLASSES, cfg.speech_encoder).eval()
    lengths = [57, 120, 4, 33]
    items = [torch.randn(n, cfg.audio.n_mels) for n in lengths]
    batch = torch.full((len(items), max(lengths), cfg.audio.n_mels), -13.8)  # log-floor padding, not zeros
    for i, item in enumerate(items):
        batch[i, : len(item)] = item
    with torch.no_grad():
        packed, _ = speech(batch, torch.tensor(lengths))
        for i, item in enumerate(items):
            alone = speech.features(item.unsqueeze(0))
            torch.testing.assert_close(packed[i : i + 1], alone, rtol=0, atol=1e-5)
    assert speech.output_lengths(torch.tensor(lengths)).tolist() == [(n - 2) // 2 for n in lengths]
    with pytest.raises(ValueError, match="lengths must be in"):
        speech(batch, torch.tensor([57, 120, 3, 33]))


@pytest.mark.parametrize("kind", ["context", "fusion"])
def test_step_equals_sequence(kind: str) -> None:
    torch.manual_seed(0)
    cfg = demo_config()
    model: ContextLSTM | FusionLSTM = (
        ContextLSTM(24, N_CLASSES, cfg.context) if kind == "context" else FusionLSTM(24, N_CLASSES, cfg.fusion)
    )
    model.eval()
    x = torch.randn(3, 9, 24)
    with torch.no_grad():
        whole, logits, (h_n, c_n) = model(x)
        assert whole.shape == (3, 9, model.feature_dim) and logits.shape == (3, 9, N_CLASSES)
        h, c = model.zero_state(3)
        h, c = h[0], c[0]
        for t in range(x.shape[1]):
            y, h, c = model.step(x[:, t], h, c)
            torch.testing.assert_close(y, whole[:, t], rtol=0, atol=1e-6)
        torch.testing.assert_close(h, h_n[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(c, c_n[0], rtol=0, atol=1e-6)
        first, _, state = model(x[:, :4])
        second, _, (h2, _) = model(x[:, 4:], state)
        torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=0, atol=1e-6)
        torch.testing.assert_close(h2, h_n, rtol=0, atol=1e-6)
        y0, _, _ = model.step(x[:, 0])  # omitted state = zeros
        torch.testing.assert_close(y0, whole[:, 0], rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------------
# ONNX export (legacy exporter, opset 17); parity with onnxruntime is the conversion room's job


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="onnx is not installed")
def test_demo_models_export_to_onnx(tmp_path: Path) -> None:
    import onnx

    from edge_mmer.convert.onnx_export import FeaturesGraph, StepGraph

    torch.manual_seed(0)
    cfg = demo_config()
    speech, face, ctx_s, _, fusion = _build(cfg)
    for m in (speech, face, ctx_s, fusion):
        m.eval()

    def export(module: nn.Module, args: tuple[torch.Tensor, ...], name: str, inputs: list[str], outputs: list[str],
               dynamic: dict[str, dict[int, str]]) -> onnx.ModelProto:
        path = tmp_path / f"{name}.onnx"
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=17, input_names=inputs,
                          output_names=outputs, dynamic_axes=dynamic)
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        return model

    m = export(FeaturesGraph(speech), (torch.randn(1, 100, cfg.audio.n_mels),), "speech", ["mel"], ["feature"],
               {"mel": {0: "batch", 1: "frames"}, "feature": {0: "batch"}})
    assert "LSTM" in {n.op_type for n in m.graph.node}
    m = export(FeaturesGraph(face), (torch.randn(1, 3, 96, 96),), "face", ["image"], ["embedding"],
               {"image": {0: "batch"}, "embedding": {0: "batch"}})
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert not face.training  # the wrapper does not flip the model back to train mode
    for name, model in (("context", ctx_s), ("fusion", fusion)):
        h = torch.zeros(1, model.hidden)
        m = export(StepGraph(model), (torch.randn(1, model.input_dim), h, h.clone()), name, ["x", "h", "c"],
                   ["y", "h_out", "c_out"], {k: {0: "batch"} for k in ("x", "h", "c", "y", "h_out", "c_out")})
        assert "LSTM" in {n.op_type for n in m.graph.node}
        assert [o.name for o in m.graph.output] == ["y", "h_out", "c_out"]
