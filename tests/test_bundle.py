"""Model bundle: write/read round trip, tamper detection on every file, schema strictness, writers."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_mmer import bundle as B
from edge_mmer.bundle import (
    Bundle,
    BundleError,
    BundleSpec,
    BundleWriter,
    SelectionSpec,
    TensorSpec,
    default_provenance,
    describe_bundle,
    parse_manifest,
    read_bundle,
    reseal_manifest,
    sha256_file,
    update_manifest,
    validate_manifest,
    verify_bundle,
)
from edge_mmer.bundle.plans import DeviceFacts
from edge_mmer.bundle.views import frozen, thawed
from edge_mmer.config import SVMConfig, demo_config
from edge_mmer.hashing import sha256_bytes
from edge_mmer.svm import TrainedSVM, train_svm
from edge_mmer.vocab import ArtifactKind

FILES = [
    "networks/speech_encoder.safetensors",
    "networks/face_encoder.safetensors",
    "selection/speech.safetensors",
    "selection/face.safetensors",
    "svm/speech.model",
    "svm/face.model",
    "svm/fused.model",
    "notes/README.txt",
    "reports/confusion.json",
]
CHANNELS = ("speech", "face", "fused")


def _train(seed: int, n_features: int) -> tuple[TrainedSVM, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(6, n_features))
    X = np.concatenate([c + rng.normal(size=(8, n_features)) for c in centres])
    y = np.repeat(np.arange(6), 8)
    return train_svm(X, y, SVMConfig(c_grid=(1.0, 4.0), gamma_grid=(0.05,), folds=2), seed=seed), X


@pytest.fixture(scope="module")
def svms() -> dict[str, tuple[TrainedSVM, np.ndarray]]:
    return {ch: _train(i, 5 + i) for i, ch in enumerate(CHANNELS)}


def _tensors(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv.weight": rng.normal(size=(4, 3, 3)).astype(np.float32),
        "conv.bias": rng.normal(size=(4,)).astype(np.float32),
    }


def build(
    out: Path, svms: dict[str, tuple[TrainedSVM, np.ndarray]], *, synthetic: bool = True, overwrite: bool = False
) -> Path:
    cfg = demo_config()
    with BundleWriter(out, overwrite=overwrite) as w:
        networks = {}
        for i, (name, inp, dim) in enumerate((("speech_encoder", "mel", 40), ("face_encoder", "image", 96))):
            w.add_safetensors(f"networks/{name}.safetensors", _tensors(i), {"network": name})
            networks[name] = {
                "weights": f"networks/{name}.safetensors",
                "inputs": [{"name": inp, "shape": ["batch", "frames", dim], "dtype": "float32"}],
                "outputs": [{"name": "embedding", "shape": ["batch", 128], "dtype": "float32"}],
                "artifacts": {},
            }
        selection = {}
        for modality in ("speech", "face"):
            rel = w.add_safetensors(
                f"selection/{modality}.safetensors",
                {"chi2": np.linspace(0, 1, 16, dtype=np.float32), "mask": (np.arange(16) % 2 == 0)},
            )
            selection[modality] = rel
        svm_entries = {ch: w.add_svm(ch, svms[ch][0]) for ch in CHANNELS}
        w.add_text("notes/README.txt", "demo bundle\n")
        w.add_json("reports/confusion.json", {"matrix": [[1, 0], [0, 1]]})
        return w.write_manifest(
            {
                "synthetic": synthetic,
                "labels": list(cfg.labels),
                "config": cfg.to_dict(),
                "networks": networks,
                "selection": selection,
                "svms": svm_entries,
                "fuzzy": {
                    "integral": "sugeno",
                    "channels": list(CHANNELS),
                    "densities": {"speech": 0.3, "face": 0.35, "fused": 0.5},
                    "lambda": 1e-06,
                },
                "metrics": {"accuracy": 0.875, "per_channel": {"speech": 0.7, "face": 0.8}},
                "provenance": default_provenance("synthetic" if synthetic else "ravdess", seed=0),
            }
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, svms: dict[str, tuple[TrainedSVM, np.ndarray]]) -> Path:
    return build(tmp_path_factory.mktemp("pristine") / "bundle", svms)


@pytest.fixture
def bdir(built: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(built, out)
    return out


def rewrite(bdir: Path, mutate: Callable[[dict[str, Any]], None], *, seal: bool = True) -> None:
    """Edit the manifest; ``seal`` recomputes manifest_sha256 so a test isolates one check."""
    path = bdir / "manifest.json"
    manifest = json.loads(path.read_bytes())
    mutate(manifest)
    path.write_bytes(B._seal(manifest) if seal else json.dumps(manifest, indent=2).encode())


def flip(path: Path, pos: int, mask: int = 0xFF) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= mask
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------------------- round trip


def test_round_trip(bdir: Path, svms: dict[str, tuple[TrainedSVM, np.ndarray]]) -> None:
    b = read_bundle(bdir)
    assert b.labels == demo_config().labels
    assert b.config == demo_config()
    assert b.synthetic is True
    assert b.model_id.startswith("demo-") and len(b.model_id) == len("demo-") + 10
    assert list(b.manifest)[:2] == ["schema", "schema_version"]
    assert b.manifest["schema"] == "edge-mmer/bundle" and b.manifest["schema_version"] == 1
    # files covers every file but manifest.json
    on_disk = sorted(p.relative_to(bdir).as_posix() for p in bdir.rglob("*") if p.is_file())
    assert on_disk == sorted([*FILES, "manifest.json"])
    assert sorted(b.files) == sorted(FILES)
    for rel, entry in b.files.items():
        assert entry == {"sha256": sha256_file(bdir / rel), "bytes": (bdir / rel).stat().st_size}
    tensors = b.load_tensors("networks/face_encoder.safetensors")
    for k, v in _tensors(1).items():
        np.testing.assert_array_equal(tensors[k], v)
    sel = b.load_tensors(b.selection["speech"])
    assert sel["mask"].dtype == np.bool_ and sel["mask"].sum() == 8
    assert b.read_text("notes/README.txt") == "demo bundle\n"
    assert b.read_json("reports/confusion.json") == {"matrix": [[1, 0], [0, 1]]}
    for ch in CHANNELS:
        trained, X = svms[ch]
        loaded = b.load_svm(ch)
        np.testing.assert_array_equal(loaded.predict_proba(X), trained.predict_proba(X))
        assert b.svms[ch]["c"] == trained.c == loaded.c
        assert (bdir / b.svms[ch]["model"]).read_bytes().startswith(b"svm_type c_svc\n")
    assert verify_bundle(bdir) == []
    assert b.provenance["seed"] == 0 and b.provenance["python"]
    assert b.provenance["torch"] is None or isinstance(b.provenance["torch"], str)


def test_model_id_is_a_content_hash(
    built: Path, tmp_path: Path, svms: dict[str, tuple[TrainedSVM, np.ndarray]]
) -> None:
    again = build(tmp_path / "again", svms)
    assert read_bundle(again).model_id == read_bundle(built).model_id


def test_describe_bundle(bdir: Path, tmp_path: Path, svms: dict[str, tuple[TrainedSVM, np.ndarray]]) -> None:
    text = describe_bundle(read_bundle(bdir))
    assert "SYNTHETIC" in text
    for needle in (
        "speech_encoder",
        "mel float32 [batch, frames, 40]",
        "sugeno",
        "cv accuracy",
        "accuracy=0.875",
        "9 files",
        "neutral, happy",
    ):
        assert needle in text, needle
    real = describe_bundle(read_bundle(build(tmp_path / "real", svms, synthetic=False)))
    assert "synthetic   no" in real and "SYNTHETIC MODEL" not in real


# ------------------------------------------------------------------------- tamper detection


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("rel", FILES)
def test_flipping_one_byte_of_any_file_names_that_file(bdir: Path, rel: str, where: str) -> None:
    path = bdir / rel
    size = path.stat().st_size
    flip(path, {"first": 0, "middle": size // 2, "last": size - 1}[where])
    with pytest.raises(BundleError) as info:
        read_bundle(bdir)
    assert f"bundle file '{rel}'" in str(info.value)
    assert "sha256 mismatch" in str(info.value)
    assert any(f"'{rel}'" in line for line in verify_bundle(bdir))


def test_flipping_any_byte_of_the_manifest_is_detected(bdir: Path) -> None:
    path = bdir / "manifest.json"
    original = path.read_bytes()
    undetected = []
    for mask in (0x01, 0x20, 0xFF):  # low bit, ASCII case bit ('e' -> 'E' in 1e-06), whole byte
        for pos in range(len(original)):
            data = bytearray(original)
            data[pos] ^= mask
            path.write_bytes(bytes(data))
            try:
                read_bundle(bdir, verify=False)
            except BundleError as exc:
                assert "manifest.json" in str(exc), str(exc)
            else:
                undetected.append((pos, mask))
    path.write_bytes(original)
    assert undetected == []
    read_bundle(bdir)


def test_a_hand_edit_that_keeps_the_schema_valid_is_still_detected(bdir: Path) -> None:
    rewrite(bdir, lambda m: m["fuzzy"]["densities"].update(speech=0.2), seal=False)
    with pytest.raises(BundleError, match=r"manifest\.json: content does not match manifest_sha256"):
        read_bundle(bdir)
    reseal_manifest(bdir)  # a deliberate edit is resealed
    assert read_bundle(bdir).fuzzy["densities"]["speech"] == 0.2


def test_truncated_file(bdir: Path) -> None:
    path = bdir / "svm/face.model"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(BundleError, match=r"bundle file 'svm/face.model': size mismatch"):
        read_bundle(bdir)


def test_missing_file(bdir: Path) -> None:
    (bdir / "selection/face.safetensors").unlink()
    with pytest.raises(BundleError, match=r"bundle file 'selection/face.safetensors': missing"):
        read_bundle(bdir)


def test_missing_or_invalid_manifest(bdir: Path, tmp_path: Path) -> None:
    (bdir / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON"):
        read_bundle(bdir)
    (bdir / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"manifest\.json: missing"):
        read_bundle(bdir)
    with pytest.raises(BundleError, match="no such bundle directory"):
        read_bundle(tmp_path / "nowhere")


def test_file_is_verified_again_at_load_time(bdir: Path) -> None:
    b = read_bundle(bdir)
    flip(bdir / "networks/speech_encoder.safetensors", 100)
    with pytest.raises(BundleError, match=r"'networks/speech_encoder.safetensors': sha256 mismatch"):
        b.load_tensors("networks/speech_encoder.safetensors")
    flip(bdir / "svm/speech.model", 5)
    with pytest.raises(BundleError, match=r"'svm/speech.model': sha256 mismatch"):
        b.load_svm("speech")


# ----------------------------------------------------------------------------------- schema


@pytest.mark.parametrize("seal", [True, False])
def test_wrong_schema_version(bdir: Path, seal: bool) -> None:
    rewrite(bdir, lambda m: m.update(schema_version=2), seal=seal)
    with pytest.raises(BundleError) as info:
        read_bundle(bdir)
    msg = str(info.value)
    assert "'schema_version'" in msg and "expected 1" in msg and "got 2" in msg


def test_wrong_schema_id(bdir: Path) -> None:
    rewrite(bdir, lambda m: m.update(schema="something/else"))
    with pytest.raises(BundleError, match=r"field 'schema'.*edge-mmer/bundle"):
        read_bundle(bdir)


@pytest.mark.parametrize("evil", ["../evil.bin", "/etc/passwd", "a/../../evil", "C:/x.bin", "a\\..\\b", "./x"])
def test_path_traversal_entry_is_refused(bdir: Path, evil: str) -> None:
    rewrite(bdir, lambda m: m["files"].update({evil: {"sha256": "0" * 63 + "1", "bytes": 1}}))
    with pytest.raises(BundleError) as info:
        read_bundle(bdir)
    assert "escapes the bundle directory" in str(info.value)


def test_reference_that_escapes_or_is_unlisted_names_the_field(bdir: Path) -> None:
    def edit(m: dict[str, Any]) -> None:
        m["networks"]["speech_encoder"]["weights"] = "../outside.safetensors"

    rewrite(bdir, edit)
    with pytest.raises(BundleError, match=r"field 'networks\.speech_encoder\.weights'.*escapes"):
        read_bundle(bdir)

    def edit2(m: dict[str, Any]) -> None:
        m["networks"]["speech_encoder"]["weights"] = "networks/other.safetensors"

    rewrite(bdir, edit2)
    with pytest.raises(BundleError, match=r"field 'networks\.speech_encoder\.weights'.*not listed in files"):
        read_bundle(bdir)


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlink_pointing_outside_is_refused(bdir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("demo bundle\n")
    (bdir / "notes/README.txt").unlink()
    (bdir / "notes/README.txt").symlink_to(outside)
    with pytest.raises(BundleError, match=r"'notes/README.txt': resolves outside"):
        read_bundle(bdir)


@pytest.mark.parametrize("name", ["weights.pkl", "sub/model.pt", "x.pth", "y.pickle"])
def test_stray_pickle_is_refused(bdir: Path, name: str) -> None:
    (bdir / name).parent.mkdir(parents=True, exist_ok=True)
    (bdir / name).write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(BundleError, match=rf"'{name}': refusing pickle"):
        read_bundle(bdir)


def test_listed_pickle_is_refused(bdir: Path) -> None:
    (bdir / "w.pkl").write_bytes(b"\x80\x04K\x01.")
    rewrite(bdir, lambda m: m["files"].update({"w.pkl": {"sha256": sha256_file(bdir / "w.pkl"), "bytes": 5}}))
    with pytest.raises(BundleError, match="refusing pickle"):
        read_bundle(bdir)


def test_unlisted_plain_file_is_a_warning(bdir: Path) -> None:
    (bdir / "stray.txt").write_text("hi")
    b = read_bundle(bdir)
    assert any("stray.txt" in w for w in b.warnings)
    report = verify_bundle(bdir)
    assert len(report) == 1 and report[0].startswith("warning: ") and "'stray.txt'" in report[0]


def test_labels_must_match_config(bdir: Path) -> None:
    rewrite(bdir, lambda m: m.update(labels=["a", "b"]))
    with pytest.raises(BundleError, match=r"field 'labels'.*differ from config\.labels"):
        read_bundle(bdir)


def test_bad_config_names_the_key(bdir: Path) -> None:
    rewrite(bdir, lambda m: m["config"]["audio"].update(n_mels=3))
    with pytest.raises(BundleError, match=r"field 'config'.*audio\.n_mels"):
        read_bundle(bdir)


def test_verify_bundle_reports_every_bad_file(bdir: Path) -> None:
    flip(bdir / "svm/speech.model", 0)
    (bdir / "notes/README.txt").unlink()
    report = verify_bundle(bdir)
    assert len(report) == 2
    assert any("'svm/speech.model'" in r for r in report) and any("'notes/README.txt'" in r for r in report)


# ---------------------------------------------------------------------------------- writers


def test_writer_refuses_to_overwrite(
    built: Path, tmp_path: Path, svms: dict[str, tuple[TrainedSVM, np.ndarray]]
) -> None:
    out = tmp_path / "b"
    shutil.copytree(built, out)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        BundleWriter(out)
    (out / "stray.txt").write_text("old")
    build(out, svms, overwrite=True)
    assert not (out / "stray.txt").exists()
    assert verify_bundle(out) == []
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no staging or backup left behind


def test_writer_leaves_nothing_when_training_fails(tmp_path: Path) -> None:
    out = tmp_path / "b"
    with pytest.raises(RuntimeError), BundleWriter(out) as w:
        w.add_text("notes.txt", "x")
        raise RuntimeError("training crashed")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_paths_and_owned_fields(tmp_path: Path) -> None:
    with BundleWriter(tmp_path / "b") as w:
        for bad in ("../x", "/abs", "model.pkl", "manifest.json", "a//b"):
            with pytest.raises(ValueError):
                w.add_text(bad, "x")
        w.add_text("a.txt", "x")
        with pytest.raises(ValueError, match="added twice"):
            w.add_text("a.txt", "y")
        with pytest.raises(ValueError, match="'files'"):
            w.write_manifest({"files": {}})


def test_writer_path_then_add_file(tmp_path: Path) -> None:
    cfg = demo_config()
    with BundleWriter(tmp_path / "b") as w:
        target = w.path("blob/data.bin")
        target.write_bytes(b"\x00" * 10)
        w.add_file("blob/data.bin", target)
        w.add_file("copy.bin", target)
        w.write_manifest({"synthetic": False, "labels": list(cfg.labels), "config": cfg.to_dict()})
    b = read_bundle(tmp_path / "b")
    assert b.files["blob/data.bin"]["bytes"] == 10 and b.files["copy.bin"]["sha256"] == sha256_bytes(b"\x00" * 10)


def test_update_manifest_adds_artifacts(bdir: Path) -> None:
    before = read_bundle(bdir).manifest
    onnx = b"fake onnx bytes"
    art = {"onnx_fp32": {"file": "onnx/speech_encoder.fp32.onnx", "opset": 17}}
    b = update_manifest(bdir, "networks.speech_encoder.artifacts", art, {"onnx/speech_encoder.fp32.onnx": onnx})
    assert b.networks["speech_encoder"]["artifacts"] == art
    assert b.files["onnx/speech_encoder.fp32.onnx"] == {"sha256": sha256_bytes(onnx), "bytes": len(onnx)}
    after = read_bundle(bdir).manifest
    for key in before:
        if key not in ("networks", "files", "manifest_sha256"):
            assert after[key] == before[key], key
    assert "opset=17" in describe_bundle(read_bundle(bdir))
    # a converter re-run replaces the file in place; a file written by the caller is hashed
    (bdir / "onnx/speech_encoder.fp32.onnx").write_bytes(b"new onnx")
    (bdir / "onnx/plan.engine").write_bytes(b"plan")
    art2 = {**art, "trt_fp16": {"file": "onnx/plan.engine", "trt_version": "10.3"}}
    update_manifest(
        bdir, "networks.speech_encoder.artifacts", art2, ["onnx/speech_encoder.fp32.onnx", "onnx/plan.engine"]
    )
    assert verify_bundle(bdir) == []
    # removing an artifact
    update_manifest(bdir, "networks.speech_encoder.artifacts", art, remove_files=["onnx/plan.engine"])
    assert not (bdir / "onnx/plan.engine").exists() and verify_bundle(bdir) == []


def test_update_manifest_guards(bdir: Path) -> None:
    with pytest.raises(ValueError, match="maintained by the bundle module"):
        update_manifest(bdir, "files", {})
    with pytest.raises(ValueError, match="unknown section"):
        update_manifest(bdir, "bogus", {})
    with pytest.raises(ValueError, match="not an existing object"):
        update_manifest(bdir, "networks.nope.artifacts", {})
    with pytest.raises(BundleError, match=r"artifacts\.x\.file'.*not listed"):
        update_manifest(bdir, "networks.speech_encoder.artifacts", {"x": {"file": "nope.onnx"}})
    flip(bdir / "svm/fused.model", 3)
    with pytest.raises(BundleError, match=r"'svm/fused\.model'"):
        update_manifest(bdir, "metrics", {"accuracy": 1.0})  # never reseal a corrupted bundle


# --------------------------------------------------------------------------------- property


def _json_values() -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
    return st.recursive(
        leaves,
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
        max_leaves=8,
    )


@pytest.fixture(scope="module")
def valid_manifest(built: Path) -> dict[str, Any]:
    manifest = json.loads((built / "manifest.json").read_bytes())
    validate_manifest(manifest)
    return manifest


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_manifest_only_ever_raises_bundle_error(valid_manifest: dict[str, Any], data: st.DataObject) -> None:
    manifest = copy.deepcopy(valid_manifest)
    for _ in range(data.draw(st.integers(1, 3))):
        node: Any = manifest
        parent: Any = None
        key: Any = None
        for _depth in range(data.draw(st.integers(0, 5))):
            if isinstance(node, dict) and node:
                k = data.draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node:
                k = data.draw(st.integers(0, len(node) - 1))
            else:
                break
            parent, key, node = node, k, node[k]
        op = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        if op == "replace" and parent is not None:
            parent[key] = data.draw(_json_values())
        elif op == "delete" and parent is not None:
            del parent[key]
        elif isinstance(node, dict):
            node[data.draw(st.text(max_size=8))] = data.draw(_json_values())
        elif isinstance(node, list):
            node.append(data.draw(_json_values()))
        elif parent is None:
            manifest = data.draw(_json_values())
    try:
        validate_manifest(manifest)
    except BundleError as exc:
        assert "manifest.json" in str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=4), st.integers(0, 3)), min_size=1, max_size=4)
)
def test_corrupted_manifest_bytes_only_ever_raise_bundle_error(
    built: Path, edits: list[tuple[int, bytes, int]]
) -> None:
    data = bytearray((built / "manifest.json").read_bytes())
    for pos, new, cut in edits:
        pos %= len(data) + 1
        data[pos : pos + cut] = new
    try:
        manifest = parse_manifest(bytes(data), built)
        validate_manifest(manifest, built)
    except BundleError:
        pass


def test_accepted_extras_and_selection_object_form(bdir: Path) -> None:
    def edit(m: dict[str, Any]) -> None:
        m["description"] = "a demonstration model"
        m["networks"]["speech_encoder"]["class"] = "SpeechEncoder"
        m["networks"]["speech_encoder"]["arch"] = {"n_mels": 40}
        m["selection"]["face"] = {"file": "selection/face.safetensors", "keep_fraction": 0.5, "n_selected": 8}
        m["svms"]["speech"]["n_features"] = len(m["svms"]["speech"]["scaling"]["lo"])

    rewrite(bdir, edit)
    b = read_bundle(bdir)
    assert b.selection_file("face") == "selection/face.safetensors"
    assert b.selection_file("speech") == "selection/speech.safetensors"
    text = describe_bundle(b)
    assert "a demonstration model" in text and "n_selected=8" in text


def test_svm_n_features_must_match_scaling(bdir: Path) -> None:
    rewrite(bdir, lambda m: m["svms"]["speech"].update(n_features=999))
    with pytest.raises(BundleError, match=r"field 'svms\.speech\.n_features'"):
        read_bundle(bdir)


def test_unknown_top_level_field_is_refused(bdir: Path) -> None:
    rewrite(bdir, lambda m: m.update(extra_stuff=1))
    with pytest.raises(BundleError, match=r"field 'extra_stuff': unknown field"):
        read_bundle(bdir)


# ----------------------------------------------------------------------------- typed views

DEMO = Path(__file__).resolve().parents[1] / "demo" / "bundle"


def test_views_are_built_by_the_validator(bdir: Path) -> None:
    b = read_bundle(bdir)
    spec = validate_manifest(b.manifest, bdir)
    assert isinstance(spec, BundleSpec) and spec == b.spec and spec.config == b.config
    assert Bundle(b.path, b.manifest).spec == spec  # a Bundle built by hand is validated too
    broken = json.loads(json.dumps(b.manifest))
    broken["networks"]["speech_encoder"]["inputs"][0]["dtype"] = "int4"
    with pytest.raises(BundleError, match=r"field 'networks\.speech_encoder\.inputs\[0\]\.dtype'"):
        Bundle(b.path, broken)
    net = b.network("speech_encoder")
    raw = b.manifest["networks"]["speech_encoder"]
    assert net.name == "speech_encoder" and net.weights == raw["weights"]
    assert net.inputs == (TensorSpec("mel", ("batch", "frames", 40), "float32"),)
    assert net.outputs[0].shape == ("batch", 128) and net.inputs[0].dynamic_axes == ("batch", "frames")
    assert net.artifacts == {} and net.kinds == () and b.artifact("speech_encoder", ArtifactKind.ONNX_FP32) is None
    assert list(b.network_specs) == list(b.manifest["networks"])
    svm = b.svm("fused")
    assert (svm.model, svm.c, svm.gamma, svm.cv_accuracy) == tuple(b.svms["fused"][k] for k in
                                                                   ("model", "c", "gamma", "cv_accuracy"))
    assert svm.n_features == len(b.svms["fused"]["scaling"]["lo"]) and svm.scaling_dict() == b.svms["fused"]["scaling"]
    assert b.selection_spec("face") == SelectionSpec("face", "selection/face.safetensors")
    for call, where in ((lambda: b.network("nope"), "networks.nope"), (lambda: b.svm("nope"), "svms.nope"),
                        (lambda: b.selection_spec("nope"), "selection.nope"),
                        (lambda: b.artifact("nope", "onnx-fp32"), "networks.nope")):
        with pytest.raises(BundleError, match=rf"field '{re.escape(where)}'"):
            call()


def test_views_are_read_only(bdir: Path) -> None:
    def edit(m: dict[str, Any]) -> None:
        m["networks"]["speech_encoder"]["class"] = "SpeechEncoder"
        m["networks"]["speech_encoder"]["arch"] = {"n_mels": 40, "sizes": [1, 2]}
        m["selection"]["face"] = {"file": "selection/face.safetensors", "keep_fraction": 0.5}

    rewrite(bdir, edit)
    b = read_bundle(bdir)
    net = b.network("speech_encoder")
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.weights = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        b.network_specs["x"] = net  # type: ignore[index]
    with pytest.raises(TypeError):
        net.extras["class"] = "x"  # type: ignore[index]
    arch = net.arch
    assert arch is not None and arch["sizes"] == (1, 2)
    with pytest.raises(TypeError):
        arch["n_mels"] = 1  # type: ignore[index]
    assert net.network_class == "SpeechEncoder" and net.extra("arch") == {"n_mels": 40, "sizes": [1, 2]}
    assert thawed(frozen(b.manifest)) == b.manifest
    sel = b.selection_spec("face")
    assert sel.file == "selection/face.safetensors" and dict(sel.facts) == {"keep_fraction": 0.5}
    # the views are a copy: the raw manifest (for writers) can change without touching them
    b.manifest["networks"]["speech_encoder"]["weights"] = "changed"
    assert b.network("speech_encoder").weights == "networks/speech_encoder.safetensors"


def test_artifacts_are_typed_by_kind(bdir: Path) -> None:
    b = read_bundle(DEMO)
    for name, net in b.network_specs.items():
        assert all(isinstance(k, ArtifactKind) and a.kind is k for k, a in net.artifacts.items())
        assert net.kinds == tuple(ArtifactKind(k) for k in b.manifest["networks"][name]["artifacts"])
        for kind, art in net.artifacts.items():
            raw = b.manifest["networks"][name]["artifacts"][kind.value]
            assert art.file == raw["file"] and art.to_dict() == raw
            assert art.precision == raw.get("precision") and art.build_facts is None
    fusion = b.artifact("fusion", "int8-trt")
    assert fusion is not None and fusion.deployable and fusion.precision == "int8"
    assert fusion.not_deployable_because == ()
    assert fusion.drift["end_to_end"]["agreement"] == 1.0
    assert b.artifact("fusion", ArtifactKind.INT8_TRT) == fusion and b.artifact("speech_context", "int8-cpu") is None
    assert b.artifact("fusion", "no-such-kind") is None
    # a plan's build facts, a refused INT8 artifact, and a name outside ArtifactKind
    facts = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7", "l4t_release": "36.4.3",
             "profiles": {"x": {"min": [1], "opt": [2], "max": [4]}}}
    (bdir / "plan.engine").write_bytes(b"plan")
    arts = {"tensorrt-fp16": {"file": "plan.engine", "precision": "fp16", **facts},
            "int8-trt": {"file": "plan.engine", "deployable": False, "not_deployable_because": ["cosine 0.9 < 0.99"]},
            "onnx_fp32": {"file": "plan.engine", "opset": 17}}
    updated = update_manifest(bdir, "networks.speech_encoder.artifacts", arts, ["plan.engine"])
    net = updated.network("speech_encoder")
    assert net.kinds == (ArtifactKind.TENSORRT_FP16, ArtifactKind.INT8_TRT)
    assert "onnx_fp32" not in {k.value for k in net.artifacts} and net.artifact("onnx_fp32") is None
    assert list(net.artifact_entries) == list(arts) and net.artifact_entries["onnx_fp32"]["opset"] == 17
    plan = net.artifact(ArtifactKind.TENSORRT_FP16)
    assert plan is not None and plan.build_facts == DeviceFacts("10.3.0", "Orin", "8.7", "36.4.3", None, None)
    assert plan.profiles["x"]["max"] == (4,) and plan.get("gpu_name") == "Orin"
    refused = net.artifact("int8-trt")
    assert refused is not None and not refused.deployable and refused.not_deployable_because == ("cosine 0.9 < 0.99",)
    assert "artifact onnx_fp32: plan.engine (opset=17)" in describe_bundle(updated)


def test_runner_and_bundle_share_one_tensor_spec() -> None:
    from edge_mmer import runner
    from edge_mmer.bundle import views
    from edge_mmer.runtime.runners import base

    assert runner.TensorSpec is views.TensorSpec is base.TensorSpec is TensorSpec


def test_shape_ranges_from_a_view_or_a_raw_entry() -> None:
    from edge_mmer.bundle.shapes import derive_profiles

    b = read_bundle(DEMO)
    for name, net in b.network_specs.items():
        assert derive_profiles(name, net, b.config) == derive_profiles(name, b.manifest["networks"][name], b.config)
