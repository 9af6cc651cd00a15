#!/usr/bin/env python3
"""Export golden Batch Normalization fixtures computed by real TensorFlow.

Usage:
    python3 scripts/export_tf_fixtures.py [OUT_DIR]        (default: fixtures/tensorflow)

Needs tensorflow-cpu 2.21.0 (Keras 3.15 comes with it) and numpy, e.g.
    python3 -m venv /work/venv-tf && /work/venv-tf/bin/pip install tensorflow-cpu==2.21.0 numpy

Every case is declared once in CASES below (name, API, shape, axis, dtype, seed, eps, momentum,
steps, data). Each is written as one JSON file, format `bn-conformance-fixture/1`, described in
fixtures/README.md: a sequence of steps, each a contract request (forwardTrain, forwardInfer or
backward) with the outputs TensorFlow produced for it. float32 values are written as the exact
doubles they are (Python's repr of float(np.float32(v)) round-trips exactly).

Determinism: fixed seeds (numpy PCG64), TF_ENABLE_ONEDNN_OPTS=0 and one intra/inter-op thread,
sorted keys, no timestamps. Re-running it reproduces the committed files byte for byte with the
package versions recorded in each file. After writing the case files, run
`npx tsx scripts/export-tfjs-fixtures.ts --manifest-only` (or the TF.js exporter) to rebuild
fixtures/manifest.json; this script also rewrites the manifest itself when OUT_DIR is the default.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_json import dump, write_manifest  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # the oneDNN kernels change rounding; keep the Eigen ones
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

FORMAT = "bn-conformance-fixture/1"
ROOT = Path(__file__).resolve().parent.parent

API_KERAS = {
    "forwardTrain": "keras.layers.BatchNormalization(axis, momentum, epsilon)(x, training=True); moving_mean/moving_variance read after each call",
    "forwardInfer": "keras.layers.BatchNormalization(...)(x, training=False)",
    "backward": "tf.GradientTape over keras.layers.BatchNormalization(...)(x, training=T), loss = reduce_sum(y * dy); gradients w.r.t. x, gamma, beta",
    "batchStatistics": "keras.ops.moments(x, reduction_axes) (the statistics the layer normalizes with)",
}
API_MOMENTS = {
    "forwardTrain": "tf.nn.moments(x, axes, keepdims=True) then tf.nn.batch_normalization(x, mean, variance, offset=beta, scale=gamma, variance_epsilon=eps); no moving statistics (result has no runningMean/runningVar)",
    "forwardInfer": "tf.nn.batch_normalization(x, runningMean, runningVar, offset=beta, scale=gamma, variance_epsilon=eps)",
    "backward": "tf.GradientTape over the forward ops above (training: through tf.nn.moments; inference: running statistics constant), loss = reduce_sum(y * dy)",
}
API_FUSED = {
    "forwardTrain": "tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, mean=runningMean, variance=runningVar, epsilon, data_format, is_training=True, exponential_avg_factor=1-momentum) -> y, runningMean, runningVar; batch mean and biased variance from tf.raw_ops.FusedBatchNormV3 reserve_space_1/reserve_space_2 (CPU)",
    "forwardInfer": "tf.compat.v1.nn.fused_batch_norm(..., is_training=False)",
    "backward": "tf.GradientTape over tf.compat.v1.nn.fused_batch_norm (training: FusedBatchNormGradV3; inference: freeze gradient), loss = reduce_sum(y * dy)",
}

LAYOUTS = {
    (2, 1): "NC", (2, 0): "CN",
    (3, 1): "NCL", (3, 2): "NLC",
    (4, 1): "NCHW", (4, 3): "NHWC",
    (5, 1): "NCDHW", (5, 4): "NDHWC",
}

# Small shapes by rank and channel position (C = 3 or 2); m = numel / C.
SHAPES = {
    (2, "last"): ([6, 3], 1),
    (3, "first"): ([3, 3, 4], 1), (3, "last"): ([3, 4, 3], 2),
    (4, "first"): ([2, 3, 3, 2], 1), (4, "last"): ([2, 3, 2, 3], 3),
    (5, "first"): ([2, 2, 2, 2, 3], 1), (5, "last"): ([2, 2, 2, 3, 2], 4),
}


def case(name, api, shape, axis, dtype="float32", seed=1, eps=1e-3, momentum=0.99, steps=2,
         data="normal", description="", tags=(), offset_ratio=None, infer=True, backward=True,
         param_dtype=None, policy=None, running_var=None):
    """param_dtype: the per-channel arrays' dtype when it differs from dtype (mixed precision);
    policy: the Keras dtype policy (mixed_float16 / mixed_bfloat16); running_var: every channel's
    initial moving variance (e.g. 1e5, above float16's 65504)."""
    return dict(name=name, api=api, shape=list(shape), axis=axis, dtype=dtype, seed=seed, eps=eps,
                momentum=momentum, steps=steps, data=data, description=description, tags=list(tags),
                offset_ratio=offset_ratio, infer=infer, backward=backward,
                param_dtype=param_dtype or dtype, policy=policy, running_var=running_var)


def declare_cases():
    cases = []
    seed = 100
    # 1. Keras 3 layer: every rank and channel position, float32 and float64, three momenta.
    momenta = [0.99, 0.5, 0.0]
    k = 0
    for (rank, pos), (shape, axis) in SHAPES.items():
        for dtype in ("float32", "float64"):
            seed += 1
            mom = momenta[k % 3]
            eps = [1e-3, 1e-5, 0.1][k % 3]
            k += 1
            cases.append(case(f"keras-{LAYOUTS[(rank, axis)].lower()}-{dtype}", "keras", shape, axis, dtype, seed,
                              eps, mom, steps=3,
                              description=f"Keras 3 layer, rank {rank}, channels-{pos}, 3 training steps, momentum {mom}, eps {eps}"))
    # Keras specials.
    cases += [
        case("keras-m1-float32", "keras", [1, 4], 1, "float32", 201, 1e-3, 0.99, 2, description="m = 1 per channel: variance 0, y = beta, moving variance decays"),
        case("keras-m1-nhwc-float32", "keras", [1, 1, 1, 3], 3, "float32", 202, 1e-3, 0.5, 2, description="m = 1 with a rank-4 input"),
        case("keras-m2-float32", "keras", [2, 3], 1, "float32", 203, 1e-3, 0.5, 3, description="m = 2 per channel"),
        case("keras-m2-ncl-float64", "keras", [2, 3, 1], 1, "float64", 204, 1e-5, 0.5, 3, description="m = 2, channels-first rank 3, float64"),
        case("keras-constant-channel-float32", "keras", [5, 3], 1, "float32", 205, 1e-3, 0.99, 2, data="constant-channel", description="channel 1 is constant: variance 0, y = beta there"),
        case("keras-constant-channel-nchw-float64", "keras", [2, 3, 2, 2], 1, "float64", 206, 1e-5, 0.5, 2, data="constant-channel", description="constant channel, float64, NCHW"),
        case("keras-eps1-float32", "keras", [6, 3], 1, "float32", 207, 1.0, 0.99, 2, description="eps = 1 (var/(var+eps) far from 1)"),
        case("keras-eps1e-5-nhwc-float32", "keras", [2, 2, 3, 3], 3, "float32", 208, 1e-5, 0.99, 2, description="eps = 1e-5"),
        case("keras-offset1e4-float32", "keras", [8, 3], 1, "float32", 209, 1e-5, 0.99, 2, data="offset", offset_ratio=1e4, tags=["ill-conditioned"], description="|mean|/std = 1e4 in float32"),
        case("keras-offset1e4-nchw-float32", "keras", [2, 3, 2, 3], 1, "float32", 210, 1e-5, 0.5, 1, data="offset", offset_ratio=1e4, tags=["ill-conditioned"], description="|mean|/std = 1e4 in float32, NCHW"),
        case("keras-offset1e4-float64", "keras", [8, 3], 1, "float64", 211, 1e-5, 0.99, 2, data="offset", offset_ratio=1e4, description="|mean|/std = 1e4 in float64"),
        case("keras-momentum0-nlc-float32", "keras", [2, 5, 3], 2, "float32", 212, 1e-3, 0.0, 2, description="momentum 0: moving statistics = last batch statistics (biased)"),
        case("keras-large-m-float32", "keras", [256, 4], 1, "float32", 213, 1e-3, 0.99, 1, description="m = 256: longer reductions"),
        case("keras-large-m-nhwc-float32", "keras", [4, 8, 8, 3], 3, "float32", 214, 1e-3, 0.9, 1, description="m = 256, NHWC"),
    ]
    # 2. tf.nn.moments + tf.nn.batch_normalization: same layouts, both dtypes.
    k = 0
    for (rank, pos), (shape, axis) in SHAPES.items():
        for dtype in ("float32", "float64"):
            seed += 1
            eps = [1e-3, 1e-5, 0.5][k % 3]
            k += 1
            cases.append(case(f"moments-{LAYOUTS[(rank, axis)].lower()}-{dtype}", "moments", shape, axis, dtype, seed,
                              eps, 0.99, steps=1,
                              description=f"tf.nn.moments + tf.nn.batch_normalization, rank {rank}, channels-{pos}, eps {eps}"))
    cases += [
        case("moments-m1-float32", "moments", [1, 3], 1, "float32", 301, 1e-3, 0.99, 1, description="m = 1"),
        case("moments-m2-float64", "moments", [2, 4], 1, "float64", 302, 1e-5, 0.99, 1, description="m = 2, float64"),
        case("moments-constant-channel-float32", "moments", [3, 3, 4], 1, "float32", 303, 1e-3, 0.99, 1, data="constant-channel", description="constant channel"),
        case("moments-eps1-nhwc-float32", "moments", [2, 2, 2, 3], 3, "float32", 304, 1.0, 0.99, 1, description="eps = 1"),
        case("moments-offset1e4-float32", "moments", [16, 3], 1, "float32", 305, 1e-5, 0.99, 1, data="offset", offset_ratio=1e4, tags=["ill-conditioned"], description="|mean|/std = 1e4 in float32: tf.nn.batch_normalization's x*inv + (beta - mean*inv) form"),
        case("moments-offset1e4-ncdhw-float32", "moments", [2, 2, 2, 2, 3], 1, "float32", 306, 1e-5, 0.99, 1, data="offset", offset_ratio=1e4, tags=["ill-conditioned"], description="|mean|/std = 1e4 in float32, rank 5"),
        case("moments-offset1e4-float64", "moments", [16, 3], 1, "float64", 307, 1e-5, 0.99, 1, data="offset", offset_ratio=1e4, description="|mean|/std = 1e4 in float64"),
        case("moments-axis0-float32", "moments", [3, 5], 0, "float32", 308, 1e-3, 0.99, 1, description="rank 2 with the channel on axis 0 (CN)"),
    ]
    # 3. Fused kernel (tensorflow-fused profile): rank 4/5, float32 only (TF rejects float64).
    fused_layouts = [((4, "last"), "NHWC"), ((4, "first"), "NCHW"), ((5, "last"), "NDHWC"), ((5, "first"), "NCDHW")]
    k = 0
    for (key, fmt) in fused_layouts:
        for mom in (0.99, 0.5, 0.0):
            seed += 1
            shape, axis = SHAPES[key]
            eps = [1e-3, 1e-5, 0.1][k % 3]
            k += 1
            cases.append(case(f"fused-{fmt.lower()}-momentum{mom}", "fused", shape, axis, "float32", seed, eps, mom,
                              steps=3 if mom != 0.0 else 2,
                              description=f"fused_batch_norm {fmt}, exponential_avg_factor {1 - mom:g}, eps {eps}"))
    cases += [
        case("fused-m1-nhwc", "fused", [1, 1, 1, 3], 3, "float32", 401, 1e-3, 0.99, 2, description="m = 1: CPU guard, Bessel factor 1, variance 0, y = offset"),
        case("fused-m1-momentum0-nchw", "fused", [1, 3, 1, 1], 1, "float32", 402, 1e-3, 0.0, 1, description="m = 1 with factor 1"),
        case("fused-m2-nhwc", "fused", [2, 1, 1, 3], 3, "float32", 403, 1e-3, 0.5, 3, description="m = 2: Bessel factor 2"),
        case("fused-m2-momentum0-ncdhw", "fused", [2, 3, 1, 1, 1], 1, "float32", 404, 1e-5, 0.0, 2, description="m = 2, factor 1"),
        case("fused-constant-channel-nhwc", "fused", [2, 2, 2, 3], 3, "float32", 405, 1e-3, 0.5, 2, data="constant-channel", description="constant channel"),
        case("fused-eps1-nchw", "fused", [2, 3, 2, 2], 1, "float32", 406, 1.0, 0.99, 2, description="eps = 1"),
        case("fused-eps1e-5-ndhwc", "fused", [2, 2, 2, 2, 3], 4, "float32", 407, 1e-5, 0.99, 2, description="eps = 1e-5 (no 1.001e-5 floor in TF 2.21)"),
        case("fused-offset1e4-nhwc", "fused", [4, 2, 2, 3], 3, "float32", 408, 1e-5, 0.99, 2, data="offset", offset_ratio=1e4, tags=["ill-conditioned"], description="|mean|/std = 1e4 in float32"),
        case("fused-offset1e4-nchw", "fused", [4, 3, 2, 2], 1, "float32", 409, 1e-5, 0.5, 1, data="offset", offset_ratio=1e4, tags=["ill-conditioned"], description="|mean|/std = 1e4 in float32, NCHW"),
        case("fused-large-m-nhwc", "fused", [4, 8, 8, 3], 3, "float32", 410, 1e-3, 0.9, 1, description="m = 256"),
    ]
    cases += half_cases()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


def half_cases():
    """Mixed precision (issue 12): Keras 3 under mixed_float16 / mixed_bfloat16 (float16 / bfloat16
    x and y, float32 variables) and fused_batch_norm with float16 x and float32 scale/offset,
    with the half bug class's corners: a moving variance above 65504, sums past 65504, eps 1e-8 on
    a constant channel, float16 subnormal inputs, |mean|/std = 100."""
    m16 = dict(dtype="float16", param_dtype="float32", policy="mixed_float16")
    mbf = dict(dtype="bfloat16", param_dtype="float32", policy="mixed_bfloat16")
    f16 = dict(dtype="float16", param_dtype="float32")
    return [
        case("keras-mixed-float16-nc", "keras", [6, 3], 1, seed=501, eps=1e-3, momentum=0.99, steps=3, description="Keras 3 mixed_float16, NC, 3 steps", **m16),
        case("keras-mixed-float16-nhwc", "keras", [2, 3, 2, 3], 3, seed=502, eps=1e-5, momentum=0.5, steps=2, description="Keras 3 mixed_float16, NHWC", **m16),
        case("keras-mixed-float16-nchw", "keras", [2, 3, 3, 2], 1, seed=503, eps=0.1, momentum=0.0, steps=2, description="Keras 3 mixed_float16, NCHW, momentum 0", **m16),
        case("keras-mixed-float16-ncl", "keras", [3, 3, 4], 1, seed=504, eps=1e-3, momentum=0.9, steps=2, description="Keras 3 mixed_float16, rank 3", **m16),
        case("keras-mixed-float16-running-var-1e5", "keras", [8, 3], 1, seed=505, eps=1e-3, momentum=0.9, steps=2, running_var=1e5, tags=["half-edge"],
             description="mixed_float16 with moving variance 1e5 (> 65504, float16's largest value): kept in float32, y finite", **m16),
        case("keras-mixed-float16-sum-overflow", "keras", [4096, 1], 1, seed=506, eps=1e-3, momentum=0.9, steps=1, data="twenty", infer=False, backward=False, tags=["half-edge"],
             description="m = 4096 values of 20 +- 0.5 in float16: the sum 81,920 is past 65504, the mean is not", **m16),
        case("keras-mixed-float16-eps1e-8-constant", "keras", [6, 3], 1, seed=507, eps=1e-8, momentum=0.9, steps=2, data="constant-channel", tags=["half-edge"],
             description="mixed_float16, eps 1e-8 (0 in float16) with a constant channel: y = beta", **m16),
        case("keras-mixed-float16-subnormal", "keras", [8, 2], 1, seed=508, eps=1e-3, momentum=0.9, steps=1, data="subnormal16", tags=["half-edge"],
             description="mixed_float16 with float16 subnormal inputs (k * 2^-24)", **m16),
        case("keras-mixed-float16-offset100", "keras", [16, 3], 1, seed=509, eps=1e-5, momentum=0.9, steps=1, data="offset", offset_ratio=100, tags=["half-edge", "ill-conditioned"],
             description="mixed_float16, |mean|/std = 100", **m16),
        case("keras-mixed-bfloat16-nc", "keras", [6, 3], 1, seed=511, eps=1e-3, momentum=0.99, steps=3, description="Keras 3 mixed_bfloat16, NC, 3 steps", **mbf),
        case("keras-mixed-bfloat16-nhwc", "keras", [2, 3, 2, 3], 3, seed=512, eps=1e-5, momentum=0.5, steps=2, description="Keras 3 mixed_bfloat16, NHWC", **mbf),
        case("keras-mixed-bfloat16-ncdhw", "keras", [2, 3, 2, 2, 2], 1, seed=513, eps=1e-3, momentum=0.9, steps=2, description="Keras 3 mixed_bfloat16, rank 5", **mbf),
        case("keras-mixed-bfloat16-offset100", "keras", [16, 3], 1, seed=514, eps=1e-5, momentum=0.9, steps=1, data="offset", offset_ratio=100, tags=["half-edge", "ill-conditioned"],
             description="mixed_bfloat16, |mean|/std = 100: cancellation for anything centring in bfloat16", **mbf),
        case("keras-mixed-bfloat16-large-m", "keras", [256, 4], 1, seed=515, eps=1e-3, momentum=0.99, steps=1, description="mixed_bfloat16, m = 256", **mbf),
        case("fused-float16-nhwc", "fused", [2, 3, 2, 3], 3, seed=521, eps=1e-3, momentum=0.99, steps=3, description="fused_batch_norm float16 x, float32 scale/offset, NHWC", **f16),
        case("fused-float16-nchw", "fused", [2, 3, 3, 2], 1, seed=522, eps=1e-5, momentum=0.5, steps=2, description="fused_batch_norm float16, NCHW", **f16),
        case("fused-float16-ndhwc", "fused", [2, 2, 2, 2, 3], 4, seed=523, eps=1e-3, momentum=0.9, steps=2, description="fused_batch_norm float16, NDHWC", **f16),
        case("fused-float16-ncdhw", "fused", [2, 3, 2, 2, 2], 1, seed=524, eps=1e-3, momentum=0.0, steps=2, description="fused_batch_norm float16, NCDHW, factor 1", **f16),
        case("fused-float16-running-var-1e5", "fused", [4, 2, 2, 3], 3, seed=525, eps=1e-3, momentum=0.9, steps=2, running_var=1e5, tags=["half-edge"],
             description="fused float16 with a float32 running variance 1e5 (> 65504)", **f16),
        case("fused-float16-offset100", "fused", [4, 2, 2, 3], 3, seed=526, eps=1e-5, momentum=0.9, steps=1, data="offset", offset_ratio=100, tags=["half-edge", "ill-conditioned"],
             description="fused float16, |mean|/std = 100", **f16),
        case("fused-float16-m2-nhwc", "fused", [2, 1, 1, 3], 3, seed=527, eps=1e-3, momentum=0.5, steps=2, description="fused float16, m = 2 (Bessel factor 2)", **f16),
        case("fused-float16-large-m-nhwc", "fused", [4, 8, 8, 3], 3, seed=528, eps=1e-3, momentum=0.9, steps=1, description="fused float16, m = 256", **f16),
    ]


# ---------------------------------------------------------------- data

def make_data(rng, c, shape, axis, dtype):
    """x with per-channel location and spread; 'offset' gives |mean|/std = offset_ratio."""
    C = shape[axis]
    bshape = [1] * len(shape)
    bshape[axis] = C
    if c["data"] == "offset":
        spread = rng.uniform(0.5, 2.0, C)
        loc = c["offset_ratio"] * spread * rng.choice([-1.0, 1.0], C)
    else:
        spread = rng.uniform(0.5, 2.0, C)
        loc = rng.uniform(-3.0, 3.0, C)
    z = rng.standard_normal(shape)
    x = loc.reshape(bshape) + spread.reshape(bshape) * z
    if c["data"] == "twenty":
        x = 20.0 + 0.5 * z
    if c["data"] == "subnormal16":
        x = np.round(8 * z) * 2.0**-24
    if c["data"] == "constant-channel":
        idx = [slice(None)] * len(shape)
        idx[axis] = min(1, C - 1)
        x[tuple(idx)] = 2.5
    return x.astype(np_dtype(dtype))


def np_dtype(dtype):
    """numpy dtype of a fixture dtype (bfloat16: ml_dtypes', as TensorFlow uses)."""
    return tf.bfloat16.as_numpy_dtype if dtype == "bfloat16" else np.dtype(dtype)


def params(rng, C, dtype):
    gamma = rng.uniform(0.5, 1.5, C).astype(dtype)
    beta = rng.uniform(-1.0, 1.0, C).astype(dtype)
    rmean = rng.uniform(-1.0, 1.0, C).astype(dtype)
    rvar = rng.uniform(0.5, 2.0, C).astype(dtype)
    return gamma, beta, rmean, rvar


def arr(a):
    """Exact doubles of a float16/bfloat16/float32/float64 array, flattened row-major."""
    a = np.asarray(a)
    assert a.dtype in (np.float32, np.float64, np.float16, tf.bfloat16.as_numpy_dtype), a.dtype
    return [float(v) for v in a.astype(np.float64).ravel()]


def np_(t):
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


# ---------------------------------------------------------------- the three APIs

def reduction_axes(shape, axis):
    return [i for i in range(len(shape)) if i != axis]


def bshape_of(shape, axis):
    b = [1] * len(shape)
    b[axis] = shape[axis]
    return b


class KerasRunner:
    profile = "keras"
    api = API_KERAS

    def __init__(self, c, gamma, beta, rmean, rvar):
        self.c = c
        self.layer = keras.layers.BatchNormalization(axis=c["axis"], momentum=c["momentum"], epsilon=c["eps"], dtype=c["policy"] or c["dtype"])
        self.layer.build(tuple(c["shape"]))
        self.layer.set_weights([gamma, beta, rmean, rvar])

    def train(self, x):
        c = self.c
        xt = tf.constant(x)
        # mixed precision: the statistics in the variables' dtype, from x widened (as the layer does)
        mean, var = keras.ops.moments(tf.cast(xt, c["param_dtype"]), reduction_axes(c["shape"], c["axis"]))
        y = self.layer(xt, training=True)
        return dict(y=np_(y), mean=np_(mean), variance=np_(var),
                    runningMean=np_(self.layer.moving_mean), runningVar=np_(self.layer.moving_variance))

    def infer(self, x):
        return dict(y=np_(self.layer(tf.constant(x), training=False)))

    def backward(self, x, dy, training):
        xt = tf.constant(x)
        # A twin layer so the moving statistics of self.layer are left alone.
        twin = keras.layers.BatchNormalization(axis=self.c["axis"], momentum=self.c["momentum"], epsilon=self.c["eps"], dtype=self.c["policy"] or self.c["dtype"])
        twin.build(tuple(self.c["shape"]))
        twin.set_weights(self.layer.get_weights())
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = twin(xt, training=training)
            loss = tf.reduce_sum(y * tf.constant(dy))
        dx, dg, db = tape.gradient(loss, [xt] + list(twin.trainable_variables))  # trainable: gamma, beta
        return dict(dx=np_(dx), dgamma=np_(dg), dbeta=np_(db))

    def state(self):
        return np_(self.layer.gamma), np_(self.layer.beta), np_(self.layer.moving_mean), np_(self.layer.moving_variance)


class MomentsRunner:
    profile = "keras"
    api = API_MOMENTS

    def __init__(self, c, gamma, beta, rmean, rvar):
        self.c = c
        b = bshape_of(c["shape"], c["axis"])
        self.gamma, self.beta, self.rmean, self.rvar = gamma, beta, rmean, rvar
        self.g = tf.constant(gamma.reshape(b))
        self.b = tf.constant(beta.reshape(b))
        self.rm = tf.constant(rmean.reshape(b))
        self.rv = tf.constant(rvar.reshape(b))

    def _fwd_train(self, xt):
        c = self.c
        mean, var = tf.nn.moments(xt, reduction_axes(c["shape"], c["axis"]), keepdims=True)
        y = tf.nn.batch_normalization(xt, mean, var, offset=self.b, scale=self.g, variance_epsilon=c["eps"])
        return y, mean, var

    def train(self, x):
        y, mean, var = self._fwd_train(tf.constant(x))
        return dict(y=np_(y), mean=np_(mean).ravel(), variance=np_(var).ravel())

    def infer(self, x):
        y = tf.nn.batch_normalization(tf.constant(x), self.rm, self.rv, offset=self.b, scale=self.g, variance_epsilon=self.c["eps"])
        return dict(y=np_(y))

    def backward(self, x, dy, training):
        xt = tf.constant(x)
        g = tf.Variable(self.g)
        b = tf.Variable(self.b)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            if training:
                mean, var = tf.nn.moments(xt, reduction_axes(self.c["shape"], self.c["axis"]), keepdims=True)
            else:
                mean, var = self.rm, self.rv
            y = tf.nn.batch_normalization(xt, mean, var, offset=b, scale=g, variance_epsilon=self.c["eps"])
            loss = tf.reduce_sum(y * tf.constant(dy))
        dx, dg, db = tape.gradient(loss, [xt, g, b])
        return dict(dx=np_(dx), dgamma=np_(dg).ravel(), dbeta=np_(db).ravel())

    def state(self):
        return self.gamma, self.beta, self.rmean, self.rvar


class FusedRunner:
    profile = "tensorflow-fused"
    api = API_FUSED

    def __init__(self, c, gamma, beta, rmean, rvar):
        self.c = c
        self.fmt = {4: {1: "NCHW", 3: "NHWC"}, 5: {1: "NCDHW", 4: "NDHWC"}}[len(c["shape"])][c["axis"]]
        self.gamma, self.beta, self.rmean, self.rvar = gamma, beta, rmean, rvar
        self.factor = 1.0 - c["momentum"]

    def train(self, x):
        c = self.c
        y, rm, rv = tf.compat.v1.nn.fused_batch_norm(
            x, self.gamma, self.beta, mean=self.rmean, variance=self.rvar, epsilon=c["eps"],
            data_format=self.fmt, is_training=True, exponential_avg_factor=self.factor)
        raw = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=self.gamma, offset=self.beta, mean=self.rmean, variance=self.rvar, epsilon=c["eps"],
            exponential_avg_factor=self.factor, data_format=self.fmt, is_training=True)
        assert np.array_equal(np_(raw.y), np_(y)), "raw op and wrapper disagree"
        self.rmean, self.rvar = np_(rm), np_(rv)
        return dict(y=np_(y), mean=np_(raw.reserve_space_1), variance=np_(raw.reserve_space_2),
                    runningMean=self.rmean, runningVar=self.rvar)

    def infer(self, x):
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, self.gamma, self.beta, mean=self.rmean, variance=self.rvar, epsilon=self.c["eps"],
            data_format=self.fmt, is_training=False)
        return dict(y=np_(y))

    def backward(self, x, dy, training):
        xt = tf.constant(x)
        g = tf.Variable(self.gamma)
        b = tf.Variable(self.beta)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            if training:
                y, _, _ = tf.compat.v1.nn.fused_batch_norm(xt, g, b, epsilon=self.c["eps"], data_format=self.fmt, is_training=True)
            else:
                y, _, _ = tf.compat.v1.nn.fused_batch_norm(xt, g, b, mean=self.rmean, variance=self.rvar, epsilon=self.c["eps"],
                                                           data_format=self.fmt, is_training=False)
            loss = tf.reduce_sum(y * tf.constant(dy))
        dx, dg, db = tape.gradient(loss, [xt, g, b])
        return dict(dx=np_(dx), dgamma=np_(dg), dbeta=np_(db))

    def state(self):
        return self.gamma, self.beta, self.rmean, self.rvar


RUNNERS = {"keras": KerasRunner, "moments": MomentsRunner, "fused": FusedRunner}


def layout_name(shape, axis):
    return LAYOUTS.get((len(shape), axis), f"axis{axis}")


def export_case(c, versions):
    rng = np.random.default_rng(c["seed"])
    shape, axis, dtype = c["shape"], c["axis"], c["dtype"]
    C = shape[axis]
    gamma, beta, rmean, rvar = params(rng, C, c["param_dtype"])
    if c["running_var"] is not None:
        rvar = np.full(C, c["running_var"], dtype=rvar.dtype)
    runner = RUNNERS[c["api"]](c, gamma, beta, rmean, rvar)
    base = dict(shape=shape, axis=axis)
    steps = []
    first_x = None
    n_train = c["steps"]
    for s in range(n_train):
        x = make_data(rng, c, shape, axis, dtype)
        if first_x is None:
            first_x = x
        g, b, rm, rv = runner.state()
        req = dict(base, x=arr(x), gamma=arr(g), beta=arr(b), eps=c["eps"], momentum=c["momentum"],
                   runningMean=arr(rm), runningVar=arr(rv))
        out = runner.train(x)
        steps.append(dict(op="forwardTrain", request=req, result={k: arr(v) for k, v in out.items()}))
    if c["infer"]:
        x = make_data(rng, c, shape, axis, dtype)
        g, b, rm, rv = runner.state()
        req = dict(base, x=arr(x), gamma=arr(g), beta=arr(b), eps=c["eps"], runningMean=arr(rm), runningVar=arr(rv))
        steps.append(dict(op="forwardInfer", request=req, result={k: arr(v) for k, v in runner.infer(x).items()}))
    if c["backward"]:
        for training in (True, False):
            x = first_x if training else make_data(rng, c, shape, axis, dtype)
            dy = rng.standard_normal(shape).astype(np_dtype(dtype))
            g, b, rm, rv = runner.state()
            req = dict(base, x=arr(x), dy=arr(dy), gamma=arr(g), eps=c["eps"], training=training)
            if not training:
                req.update(runningMean=arr(rm), runningVar=arr(rv))
            out = runner.backward(x, dy, training)
            steps.append(dict(op="backward", request=req, result={k: arr(v) for k, v in out.items()}))
    m = int(np.prod(shape)) // C
    tags = sorted(set(c["tags"]) | {
        f"rank{len(shape)}",
        "channels-last" if axis == len(shape) - 1 else ("channels-first" if axis == 1 else f"axis{axis}"),
        f"momentum-{c['momentum']:g}", f"eps-{c['eps']:g}", f"api-{c['api']}", c["data"],
    } | ({"m1"} if m == 1 else set()) | ({"m2"} if m == 2 else set()) | ({"multi-step"} if n_train > 1 else set()))
    doc = {
        "format": FORMAT,
        "name": f"tf-{c['name']}",
        "description": c["description"],
        "generator": {
            "name": "scripts/export_tf_fixtures.py",
            "language": "python",
            "runtime": f"python {platform.python_version()}",
            "packages": versions,
            "settings": {"TF_ENABLE_ONEDNN_OPTS": "0", "intraOpThreads": 1, "interOpThreads": 1, "device": "CPU"},
        },
        "api": runner.api,
        "profile": runner.profile,
        "dtype": dtype,
        **({"paramDtype": c["param_dtype"]} if c["param_dtype"] != dtype else {}),
        "shape": shape,
        "axis": axis,
        "layout": layout_name(shape, axis),
        "m": m,
        "seed": c["seed"],
        "eps": c["eps"],
        "momentum": c["momentum"],
        "momentumConvention": "decay: running = momentum * running + (1 - momentum) * batch" + (
            f"; passed to TF as exponential_avg_factor = 1 - momentum = {1 - c['momentum']!r}" if c["api"] == "fused" else ""),
        "data": {"kind": c["data"], **({"offsetToSpread": c["offset_ratio"]} if c["offset_ratio"] else {})},
        "tags": tags,
        "steps": steps,
    }
    return doc


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fixtures" / "tensorflow"
    out.mkdir(parents=True, exist_ok=True)
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    cases = declare_cases()
    for old in out.glob("tf-*.json"):
        old.unlink()
    for c in cases:
        doc = export_case(c, versions)
        (out / f"{doc['name']}.json").write_text(dump(doc) + "\n")
    print(f"wrote {len(cases)} TensorFlow fixtures to {out}")
    if len(sys.argv) <= 1:
        write_manifest(ROOT / "fixtures")
        print("rewrote fixtures/manifest.json")


if __name__ == "__main__":
    main()
