#!/usr/bin/env python3
"""Export golden Batch Normalization fixtures from the ONNX reference evaluator.

Usage:
    python3 scripts/export_onnx_fixtures.py [OUT_DIR]        (default: fixtures/onnx)

Needs onnx (1.23: onnx.reference.ReferenceEvaluator) and numpy (ml_dtypes comes with onnx), e.g.
    python3 -m venv /work/venv-onnx-fx && /work/venv-onnx-fx/bin/pip install onnx numpy

Each case is a one-node model, BatchNormalization from the default domain at opset 15, checked
with onnx.checker (full_check), run by onnx.reference.ReferenceEvaluator: training_mode = 1
(outputs Y, running_mean, running_var) for the training steps and training_mode = 0 for the
inference step. The cases follow the `onnx` profile: momentum in the decay convention
(running = momentum * running + (1 - momentum) * batch) and the biased batch variance. ONNX has
no batch-statistics outputs at opset 15 and no BatchNormalization gradient, so the results hold
y and the running statistics, and backward is recorded under `omitted`. Mixed precision is the
opset-15 T / T1 / T2 split: X and Y in float16 or bfloat16, scale, B, the input and running
statistics in float32.

Determinism: fixed seeds (numpy PCG64 draws in float64, then rounded to the dtype), numpy only
(no BLAS), sorted keys, no timestamps. This script rewrites fixtures/manifest.json (every
source's files) when OUT_DIR is the default.
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_json import dump, write_manifest  # noqa: E402

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

FORMAT = "bn-conformance-fixture/1"
ROOT = Path(__file__).resolve().parent.parent
OPSET = 15
NP = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64), "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
PROTO = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}
HALF = ("float16", "bfloat16")
LAYOUTS = {2: "NC", 3: "NCL", 4: "NCHW", 5: "NCDHW"}

API = {
    "forwardTrain": f"onnx.reference.ReferenceEvaluator on a one-node model: BatchNormalization (opset {OPSET}, training_mode=1, epsilon, momentum) with outputs Y, running_mean, running_var; no batch mean/variance outputs at this opset (the result has none)",
    "forwardInfer": f"the same, training_mode=0: Y from input_mean/input_var",
}
OMITTED_BACKWARD = ("backward: not recorded: ONNX has no BatchNormalization gradient operator, and the reference evaluator "
                    f"(onnx {onnx.__version__}) implements no ai.onnx.preview.training Gradient")

# Where the evaluator disagrees with the operator's specification (checked by the golden spec:
# these fixtures, and only these, are off the exact answer beyond their bound).
RUNNING_STATS_IN_T = {
    "id": "onnx-reference-running-stats-in-T",
    "summary": "ReferenceEvaluator's BatchNormalization (training_mode=1) casts running_mean/running_var to X's dtype T; the opset-15 schema types them T2 (float32 here). With float16/bfloat16 X the running statistics come back rounded to half.",
    "evidence": "onnx/reference/ops/op_batch_normalization.py (onnx 1.23.1), _batchnorm_training_mode: `output_mean.astype(x.dtype), output_var.astype(x.dtype)`; onnx.defs.get_schema('BatchNormalization', 15).outputs: running_mean, running_var of type T2",
    "affects": ["runningMean", "runningVar"],
}
BATCH_STATS_IN_T = {
    "id": "onnx-reference-batch-stats-in-T",
    "summary": "ReferenceEvaluator's BatchNormalization (training_mode=1) computes the batch statistics with numpy in X's dtype: x.mean() (float16: float32 inside, the result rounded to float16; bfloat16: summed in bfloat16) and x.var() (deviations, squares and sums all in the half dtype), then subtracts the half mean from x in half. Y and the running statistics carry those roundings, beyond the contract's half bound (statistics in float32, each output rounded once). The schema does not fix the compute precision.",
    "evidence": "onnx/reference/ops/op_batch_normalization.py (onnx 1.23.1), _batchnorm_training_mode: saved_mean = x.mean(axis), saved_var = x.var(axis), then _batchnorm_test_mode(x, s, bias, saved_mean, saved_var); numpy 2.4 _core/_methods.py _mean (float16 only: float32 intermediate) and _var (no such case)",
    "affects": ["y", "runningMean", "runningVar"],
}
HALF_ARITHMETIC = {
    "id": "onnx-reference-half-arithmetic",
    "summary": "With T = T1 = T2 = float16 the evaluator computes s * (x - mean) / sqrt(var + epsilon) + bias in float16, rounding after every operation, beyond the contract's half bound (computed in float32, each output rounded once). The schema does not fix the compute precision.",
    "evidence": "onnx/reference/ops/op_batch_normalization.py (onnx 1.23.1), _batchnorm_test_mode: numpy arithmetic on the float16 arrays as given",
    "affects": ["y"],
}


def case(name, shape, dtype="float32", seed=1, eps=1e-5, momentum=0.9, train=2, infer=True, data="normal",
         description="", tags=(), offset_ratio=None, param_dtype=None, known_issues=()):
    """train: the number of training_mode=1 steps (0: an inference-only case). epsilon and momentum
    are float32 attributes in ONNX (AttributeProto.FLOAT): the model holds, and the evaluator
    computes with, float32(eps) and float32(momentum) even for double X, so those are the values
    the requests record (float32(1e-5) = 9.99999974737875e-06)."""
    eps, momentum = float(np.float32(eps)), float(np.float32(momentum))
    return dict(name=name, shape=list(shape), dtype=dtype, seed=seed, eps=eps, momentum=momentum, train=train,
                infer=infer, data=data, description=description, tags=list(tags), offset_ratio=offset_ratio,
                param_dtype=param_dtype or dtype, known_issues=list(known_issues))


def declare_cases():
    cases = []
    seed = 900
    # 1. inference (training_mode=0) at every rank
    for shape, dtype, eps in (([6, 3], "float32", 1e-5), ([3, 3, 4], "float64", 1e-5), ([2, 3, 3, 2], "float32", 1e-3),
                              ([2, 3, 2, 2, 2], "float64", 1e-5), ([2, 3, 2, 2], "float32", 1.0)):
        seed += 1
        lay = LAYOUTS[len(shape)]
        cases.append(case(f"infer-{lay.lower()}-{dtype}" + ("-eps1" if eps == 1.0 else ""), shape, dtype, seed, eps, train=0,
                          description=f"training_mode=0, {lay}, eps {eps:g}"))
    # 2. training (training_mode=1), steps chained, then inference on the final running statistics
    for shape, dtype, mom, eps in (([6, 3], "float32", 0.9, 1e-5), ([6, 3], "float64", 0.9, 1e-5),
                                   ([3, 3, 4], "float32", 0.5, 1e-5), ([3, 3, 4], "float64", 0.99, 1e-3),
                                   ([2, 3, 3, 2], "float32", 0.9, 1e-5), ([2, 3, 3, 2], "float64", 0.0, 1e-5),
                                   ([2, 3, 2, 2, 2], "float32", 0.9, 1e-3), ([2, 2, 3, 2, 2], "float64", 0.5, 1e-5)):
        seed += 1
        lay = LAYOUTS[len(shape)]
        cases.append(case(f"train-{lay.lower()}-{dtype}", shape, dtype, seed, eps, mom, train=3,
                          description=f"training_mode=1, {lay}, 3 steps, momentum {mom} (decay), eps {eps:g}"))
    cases += [
        case("train-multi-step-nchw-float32", [2, 3, 2, 2], "float32", 931, 1e-5, 0.9, train=6, description="6 training steps: running statistics chained step to step"),
        case("train-m1-nc-float32", [1, 4], "float32", 932, 1e-5, 0.9, train=2, description="m = 1: variance 0, Y = B, running_var decays"),
        case("train-m2-nc-float32", [2, 3], "float32", 933, 1e-5, 0.5, train=2, description="m = 2: the biased variance (no m/(m-1))"),
        case("train-constant-channel-nc-float32", [5, 3], "float32", 934, 1e-5, 0.9, train=2, data="constant-channel", description="channel 1 is constant: variance 0, Y = B there"),
        case("train-offset1e4-nc-float32", [8, 3], "float32", 935, 1e-5, 0.9, train=2, data="offset", offset_ratio=1e4, tags=["ill-conditioned"],
             description="|mean|/std = 1e4 in float32"),
        case("train-offset1e4-nchw-float64", [2, 3, 2, 3], "float64", 936, 1e-5, 0.9, train=1, data="offset", offset_ratio=1e4, description="|mean|/std = 1e4 in float64"),
        case("train-large-m-nc-float32", [256, 4], "float32", 937, 1e-5, 0.9, train=1, description="m = 256"),
    ]
    cases += half_cases()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


def half_cases():
    """Opset 15's T / T2 split: half X and Y, float32 statistics (and one pure float16 case)."""
    m16 = dict(dtype="float16", param_dtype="float32")
    mbf = dict(dtype="bfloat16", param_dtype="float32")
    both = [RUNNING_STATS_IN_T, BATCH_STATS_IN_T]
    return [
        case("mixed-float16-infer-nchw", [2, 3, 3, 2], seed=951, train=0, description="float16 X, float32 scale/B/statistics, training_mode=0", **m16),
        case("mixed-float16-infer-ncdhw", [2, 3, 2, 2, 2], seed=952, eps=1e-3, train=0, description="float16 X, float32 statistics, rank 5, training_mode=0", **m16),
        case("mixed-float16-train-nc", [6, 3], seed=953, train=2, known_issues=both, description="float16 X, float32 statistics, training_mode=1 (the evaluator returns the running statistics in float16)", **m16),
        case("mixed-float16-train-nchw", [2, 3, 3, 2], seed=954, momentum=0.5, train=2, known_issues=both, description="float16 X, float32 statistics, training_mode=1, NCHW", **m16),
        case("mixed-bfloat16-infer-nc", [6, 3], seed=961, train=0, description="bfloat16 X, float32 statistics, training_mode=0", **mbf),
        case("mixed-bfloat16-train-nchw", [2, 3, 3, 2], seed=962, train=2, known_issues=both, description="bfloat16 X, float32 statistics, training_mode=1", **mbf),
        case("float16-infer-nchw", [2, 3, 2, 2], "float16", 971, 1e-3, train=0, known_issues=[HALF_ARITHMETIC],
             description="pure float16 (T = T1 = T2 = float16), training_mode=0: the evaluator computes in float16"),
    ]


# ---------------------------------------------------------------- data

def make_data(rng, c):
    """x with per-channel location and spread (channel axis 1); 'offset': |mean|/std = offset_ratio."""
    shape = c["shape"]
    C = shape[1]
    bshape = [1, C] + [1] * (len(shape) - 2)
    spread = rng.uniform(0.5, 2.0, C)
    if c["data"] == "offset":
        loc = c["offset_ratio"] * spread * rng.choice([-1.0, 1.0], C)
    else:
        loc = rng.uniform(-3.0, 3.0, C)
    x = loc.reshape(bshape) + spread.reshape(bshape) * rng.standard_normal(shape)
    if c["data"] == "constant-channel":
        x[:, min(1, C - 1)] = 2.5
    return x.astype(NP[c["dtype"]])


def params(rng, C, dtype):
    return tuple(a.astype(NP[dtype]) for a in (rng.uniform(0.5, 1.5, C), rng.uniform(-1.0, 1.0, C),
                                               rng.uniform(-1.0, 1.0, C), rng.uniform(0.5, 2.0, C)))


def arr(a):
    """Exact doubles of an array of any fixture dtype, flattened row-major."""
    a = np.asarray(a)
    assert a.dtype in NP.values(), a.dtype
    return [float(v) for v in a.astype(np.float64).ravel()]


# ---------------------------------------------------------------- onnx

def evaluator(c, training):
    """A checked one-node BatchNormalization model for this case, and its ReferenceEvaluator."""
    shape, C = c["shape"], c["shape"][1]
    t, u = PROTO[c["dtype"]], PROTO[c["param_dtype"]]
    inputs = [helper.make_tensor_value_info("X", t, shape)] + [helper.make_tensor_value_info(n, u, [C]) for n in ("scale", "B", "input_mean", "input_var")]
    names = ["Y"] + (["running_mean", "running_var"] if training else [])
    # the schema's types: Y is T, the running statistics T2 (what the evaluator returns is recorded as is)
    outputs = [helper.make_tensor_value_info("Y", t, shape)] + [helper.make_tensor_value_info(n, u, [C]) for n in names[1:]]
    node = helper.make_node("BatchNormalization", ["X", "scale", "B", "input_mean", "input_var"], names,
                            epsilon=c["eps"], momentum=c["momentum"], training_mode=int(training))
    model = helper.make_model(helper.make_graph([node], "bn", inputs, outputs), opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model, full_check=True)
    held = {a.name: a.f for a in model.graph.node[0].attribute if a.name in ("epsilon", "momentum")}
    assert held == {"epsilon": c["eps"], "momentum": c["momentum"]}, held  # the recorded values are the model's
    return ReferenceEvaluator(model)


def export_case(c, versions):
    rng = np.random.default_rng(c["seed"])
    shape, dtype, pdt = c["shape"], c["dtype"], c["param_dtype"]
    C = shape[1]
    m = int(np.prod(shape)) // C
    gamma, beta, rmean, rvar = params(rng, C, pdt)
    base = dict(shape=shape, axis=1)
    steps = []
    train_ev = evaluator(c, True) if c["train"] else None
    for _ in range(c["train"]):
        x = make_data(rng, c)
        req = dict(base, x=arr(x), gamma=arr(gamma), beta=arr(beta), eps=c["eps"], momentum=c["momentum"], runningMean=arr(rmean), runningVar=arr(rvar))
        y, rm, rv = train_ev.run(None, {"X": x, "scale": gamma, "B": beta, "input_mean": rmean, "input_var": rvar})
        assert y.dtype == NP[dtype], (y.dtype, dtype)
        # the state the next step starts from is what the evaluator returned (in T when it differs from T2)
        rmean, rvar = rm.astype(NP[pdt]), rv.astype(NP[pdt])
        steps.append(dict(op="forwardTrain", request=req, result=dict(y=arr(y), runningMean=arr(rm), runningVar=arr(rv))))
    if c["infer"]:
        x = make_data(rng, c)
        req = dict(base, x=arr(x), gamma=arr(gamma), beta=arr(beta), eps=c["eps"], runningMean=arr(rmean), runningVar=arr(rvar))
        (y,) = evaluator(c, False).run(None, {"X": x, "scale": gamma, "B": beta, "input_mean": rmean, "input_var": rvar})
        assert y.dtype == NP[dtype], (y.dtype, dtype)
        steps.append(dict(op="forwardInfer", request=req, result=dict(y=arr(y))))
    tags = sorted(set(c["tags"]) | {
        f"rank{len(shape)}", "channels-first", f"momentum-{c['momentum']:g}", f"eps-{c['eps']:g}", c["data"],
        "training-mode-1" if c["train"] else "training-mode-0",
    } | ({"m1"} if m == 1 else set()) | ({"m2"} if m == 2 else set()) | ({"multi-step"} if c["train"] > 1 else set())
      | ({"mixed-precision"} if pdt != dtype else set()) | ({"half"} if dtype in HALF else set()))
    return {
        "format": FORMAT,
        "name": f"onnx-{c['name']}",
        "description": c["description"],
        "generator": {
            "name": "scripts/export_onnx_fixtures.py",
            "language": "python",
            "runtime": f"python {platform.python_version()}",
            "packages": versions,
            "settings": {"evaluator": "onnx.reference.ReferenceEvaluator", "opset": OPSET, "checker": "onnx.checker.check_model(full_check=True)"},
        },
        "api": {k: v for k, v in API.items() if (k == "forwardTrain" and c["train"]) or (k == "forwardInfer" and c["infer"])},
        "profile": "onnx",
        "dtype": dtype,
        **({"paramDtype": pdt} if pdt != dtype else {}),
        "shape": shape,
        "axis": 1,
        "layout": LAYOUTS[len(shape)],
        "m": m,
        "seed": c["seed"],
        "eps": c["eps"],
        "momentum": c["momentum"],
        "momentumConvention": "decay (ONNX): running = momentum * running + (1 - momentum) * batch, with the biased batch variance; eps and momentum are the float32 attribute values the model holds",
        "data": {"kind": c["data"], **({"offsetToSpread": c["offset_ratio"]} if c["offset_ratio"] else {})},
        "tags": tags,
        **({"knownIssues": c["known_issues"]} if c["known_issues"] else {}),
        "omitted": [OMITTED_BACKWARD],
        "steps": steps,
    }


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fixtures" / "onnx"
    out.mkdir(parents=True, exist_ok=True)
    versions = {"onnx": onnx.__version__, "numpy": np.__version__, "ml_dtypes": ml_dtypes.__version__}
    cases = declare_cases()
    for old in out.glob("onnx-*.json"):
        old.unlink()
    for c in cases:
        doc = export_case(c, versions)
        (out / f"{doc['name']}.json").write_text(dump(doc) + "\n")
    print(f"wrote {len(cases)} ONNX fixtures to {out}")
    if len(sys.argv) <= 1:
        write_manifest(ROOT / "fixtures")
        print("rewrote fixtures/manifest.json")


if __name__ == "__main__":
    main()
