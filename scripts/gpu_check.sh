#!/usr/bin/env bash
# One GPU check: every GPU test and benchmark that can run with what is installed here (TensorRT,
# pycuda, onnxruntime-gpu, torch CUDA), in under 8 minutes, and one report of what ran, what was
# skipped and why, and the figures.
#
#   bash scripts/gpu_check.sh [REPORT.md]      (default: $OUT/gpu_check.md when $OUT is set, else ./gpu_check.md)
#
# It never fails because something is missing: a step that cannot run is reported as skipped with
# the reason (on a machine without a GPU every GPU step is). Exit status 1 only when a step that ran
# failed. PYTHON picks the interpreter (default: .venv/bin/python, else python3); GPU_CHECK_BUDGET_S
# the total budget (default 450 s).
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
REPORT="${1:-${OUT:-.}/gpu_check.md}"
BUDGET="${GPU_CHECK_BUDGET_S:-450}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$(dirname "$REPORT")"
START=$SECONDS
FAILED=0
ROWS=()      # summary rows
DETAILS=()   # detail sections (files to append)

left() { echo $(( BUDGET - (SECONDS - START) )); }

# step NAME MAX_S -- CMD...: run with a timeout inside the budget; record status, time, log
step() {
    local name="$1" max="$2"; shift 3
    local remaining; remaining=$(left)
    local limit=$(( max < remaining - 10 ? max : remaining - 10 ))
    local log="$WORK/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_').log"
    if [ "$limit" -lt 15 ]; then
        ROWS+=("| $name | skipped | 0 | the ${BUDGET} s budget is spent |")
        return 0
    fi
    local t0=$SECONDS rc
    timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$log" 2>&1
    rc=$?
    local dt=$(( SECONDS - t0 )) status=ran note="exit 0"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status=failed; note="timed out after ${limit} s"; FAILED=1
    elif [ "$rc" -ne 0 ]; then status=failed; note="exit $rc"; FAILED=1; fi
    ROWS+=("| $name | $status | $dt | $note |")
    DETAILS+=("$name|$log")
}

skip() { ROWS+=("| $1 | skipped | 0 | $2 |"); }

# ------------------------------------------------------------------------------------ what is here
"$PY" - >"$WORK/facts.json" 2>"$WORK/facts.err" <<'EOF'
import json, shutil, subprocess
out = {}
def why(exc): return f"{type(exc).__name__}: {exc}"[:200]
try:
    import tensorrt as trt
    out["tensorrt"] = trt.__version__
except Exception as exc:
    out["tensorrt"] = None; out["tensorrt_why"] = why(exc)
try:
    import pycuda.driver as cuda
    cuda.init(); out["pycuda"] = f"{cuda.Device.count()} device(s)"
except Exception as exc:
    out["pycuda"] = None; out["pycuda_why"] = why(exc)
try:
    import onnxruntime as ort
    out["onnxruntime"] = ort.__version__; out["ort_providers"] = ort.get_available_providers()
except Exception as exc:
    out["onnxruntime"] = None; out["onnxruntime_why"] = why(exc); out["ort_providers"] = []
try:
    import torch
    out["torch"] = torch.__version__; out["torch_cuda"] = bool(torch.cuda.is_available())
    if out["torch_cuda"]:
        out["torch_device"] = torch.cuda.get_device_name(0)
except Exception as exc:
    out["torch"] = None; out["torch_cuda"] = False; out["torch_why"] = why(exc)
try:
    from edge_mmer.convert.tensorrt_build import tensorrt_available
    ok, reason = tensorrt_available(); out["tensorrt_builds"] = ok; out["tensorrt_builds_why"] = reason
except Exception as exc:
    out["tensorrt_builds"] = False; out["tensorrt_builds_why"] = why(exc)
try:
    from edge_mmer.bundle.plans import probe_device_facts
    out["device_facts"] = probe_device_facts().to_record()
except Exception as exc:
    out["device_facts"] = why(exc)
smi = shutil.which("nvidia-smi")
if smi:
    r = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                       capture_output=True, text=True, timeout=20)
    out["nvidia_smi"] = (r.stdout or r.stderr).strip()
else:
    out["nvidia_smi"] = None
print(json.dumps(out))
EOF
fact() { "$PY" -c "import json,sys; d=json.load(open('$WORK/facts.json')); v=d.get('$1'); print('' if v in (None, False, []) else (v if isinstance(v, str) else json.dumps(v)))" 2>/dev/null; }
TRT_BUILDS="$(fact tensorrt_builds)"
PROVIDERS="$(fact ort_providers)"
HAS_CUDA_EP=""; case "$PROVIDERS" in *CUDAExecutionProvider*) HAS_CUDA_EP=1;; esac
HAS_TORCH_CUDA="$(fact torch_cuda)"

# ------------------------------------------------------------------------------------- GPU tests
GPU_TESTS=(tests/runtime/test_runners.py tests/convert/test_tensorrt_build.py tests/runtime/test_profile.py)
if [ -n "$TRT_BUILDS" ] || [ -n "$HAS_CUDA_EP" ]; then
    step "GPU tests (needs_tensorrt, needs_gpu)" 220 -- "$PY" -m pytest -q -rs -s -p no:cacheprovider \
        -m "needs_tensorrt or needs_gpu" "${GPU_TESTS[@]}"
else
    skip "GPU tests (needs_tensorrt, needs_gpu)" "no TensorRT that can build ($(fact tensorrt_builds_why)) and no CUDA execution provider in onnxruntime (providers: ${PROVIDERS:-none})"
fi
if [ -n "$HAS_TORCH_CUDA" ]; then
    step "torch CUDA smoke (matmul)" 30 -- "$PY" -c "import torch; a=torch.randn(512,512,device='cuda'); print(float((a@a).sum()))"
else
    TORCH_WHY="$(fact torch_why)"
    skip "torch CUDA smoke (matmul)" "${TORCH_WHY:-torch.cuda.is_available() is False} (torch $(fact torch)); the suite has no torch-CUDA test"
fi

# -------------------------------------------------------------------- plans built and checked here
BUNDLE="$WORK/bundle"
"$PY" -c "import shutil, sys; sys.path.insert(0, 'tests'); from support.paths import DEMO_BUNDLE; shutil.copytree(DEMO_BUNDLE, '$BUNDLE')" 2>>"$WORK/facts.err"
PLANS=""
if [ -n "$TRT_BUILDS" ] && [ -d "$BUNDLE" ]; then
    step "TensorRT fp16 plans of the demo bundle, each checked against FP32 ONNX" 150 -- \
        "$PY" -m edge_mmer.cli convert --bundle "$BUNDLE" --tensorrt --plan-precision fp16
    if [ "${ROWS[-1]}" != "${ROWS[-1]/| ran |/}" ]; then
        PLANS=1
        "$PY" - "$BUNDLE" >"$WORK/plan_drift.md" 2>&1 <<'EOF'
import sys
from edge_mmer.bundle import read_bundle
b = read_bundle(sys.argv[1])
print("| network | plan | deployable | output | cosine | max abs | shapes |\n|---|---|---|---|---|---|---|")
for name, net in b.networks.items():
    for kind, spec in net["artifacts"].items():
        if not kind.startswith("tensorrt-"):
            continue
        for out, v in (spec.get("drift") or {}).get("outputs", {}).items():
            print(f"| {name} | {kind} | {spec.get('deployable')} | {out} | {v['cosine']:.6f} | {v['max_abs']:.3e} | "
                  f"{'; '.join(spec['drift'].get('shapes', []))} |")
EOF
        DETAILS+=("plan drift against FP32 ONNX|$WORK/plan_drift.md")
    fi
else
    skip "TensorRT fp16 plans of the demo bundle, each checked against FP32 ONNX" "$(fact tensorrt_builds_why)"
fi

# ------------------------------------------------------------------------------------ benchmarks
VARIANTS=""
[ -n "$HAS_CUDA_EP" ] && VARIANTS="onnxruntime:fp32"
[ -n "$PLANS" ] && VARIANTS="${VARIANTS:+$VARIANTS,}tensorrt:fp16,tensorrt:fp32"
if [ -n "$VARIANTS" ]; then
    case "$VARIANTS" in *,*) ;; *) VARIANTS="$VARIANTS,onnxruntime:fp32";; esac
    step "micro benchmark ($VARIANTS)" 120 -- "$PY" -m edge_mmer.cli profile --bundle "$BUNDLE" --micro \
        --compare "$VARIANTS" --runs 300 --warmup 50 --out "$WORK/micro" --no-plots
    [ -f "$WORK/micro/profile.md" ] && DETAILS+=("micro benchmark report|$WORK/micro/profile.md")
    step "pipeline benchmark on the demo clip ($VARIANTS)" 90 -- "$PY" -m edge_mmer.cli profile --bundle "$BUNDLE" \
        --compare "$VARIANTS" --runs 2 --out "$WORK/pipeline" --no-plots
    [ -f "$WORK/pipeline/profile.md" ] && DETAILS+=("pipeline benchmark report|$WORK/pipeline/profile.md")
else
    skip "micro and pipeline benchmarks on a GPU backend" "no GPU backend here (no TensorRT plans, no CUDA execution provider); the CPU figures come from benchmarks/, not from this script"
fi

# ------------------------------------------------------------------------------------------ report
{
    echo "# GPU check"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -srm), git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(( SECONDS - START )) s of a ${BUDGET} s budget."
    echo
    echo "## What is installed"
    echo
    echo '```json'
    "$PY" -m json.tool "$WORK/facts.json" 2>/dev/null || cat "$WORK/facts.json" "$WORK/facts.err"
    echo '```'
    echo
    echo "## Steps"
    echo
    echo "| step | status | seconds | note |"
    echo "|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    for item in "${DETAILS[@]+"${DETAILS[@]}"}"; do
        name="${item%%|*}"; file="${item#*|}"
        echo
        echo "## $name"
        echo
        case "$file" in
            *.md) cat "$file" ;;
            *) echo '```'; grep -E "PASSED|FAILED|SKIPPED|ERROR|PLAN-DRIFT|passed|failed|skipped|error|Error|OK:|tensorrt-" "$file" | tail -60; echo '```' ;;
        esac
    done
} >"$REPORT"
echo "gpu_check: report written to $REPORT ($(( SECONDS - START )) s)"
exit "$FAILED"
