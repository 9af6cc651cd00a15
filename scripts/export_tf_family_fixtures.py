#!/usr/bin/env python3
"""Export golden fixtures for the normalization family (LayerNorm, RMSNorm, GroupNorm,
InstanceNorm) computed by real Keras 3 on the TensorFlow backend (issue 23).

Usage:
    python3 scripts/export_tf_family_fixtures.py [OUT_DIR]      (default: fixtures/keras-family)

Needs tensorflow-cpu 2.21.0 (Keras 3.15 comes with it) and numpy, e.g.
    python3 -m venv /work/venv-tf-fx && /work/venv-tf-fx/bin/pip install tensorflow-cpu==2.21.0 numpy
(on a machine without PyPI: PIP_CONFIG_FILE=/dev/null pip install --index-url file:///opt/pypi/simple
--find-links /opt/wheels ...).

Every case is declared once in declare_cases(). Each is one JSON file in the format
`bn-conformance-fixture/1` with the family's steps (fixtures/README.md, "Normalization family"):
a forward step (layerNorm, rmsNorm, groupNorm or instanceNorm) and its backward step, each a
contract request with the outputs Keras produced for it. float32/float16 values are written as
the exact doubles they are.

Each case is also computed here in numpy float64 from the recorded inputs. Where Keras is further
from that than a float program of its precision may be (the bound below, the same derivation as
spec/golden/family-fixtures.spec.ts), the file gets a `knownIssues` entry with the evidence; the
recorded outputs are always Keras's own, never corrected.

Determinism: fixed seeds (numpy PCG64), KERAS_BACKEND=tensorflow, TF_ENABLE_ONEDNN_OPTS=0, one
intra/inter-op thread, sorted keys, no timestamps. Re-running it reproduces the committed files
byte for byte with the package versions recorded in each file. With the default OUT_DIR it also
rewrites fixtures/manifest.json (every fixture directory).
"""
from __future__ import annotations

import os
import platform
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_json import dump, write_manifest  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # the oneDNN kernels change rounding; keep the Eigen ones
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

FORMAT = "bn-conformance-fixture/1"
ROOT = Path(__file__).resolve().parent.parent
GRAD = "tf.GradientTape over the same layer call, loss = reduce_sum(y * dy); gradients w.r.t. x and the layer's trainable variables"

API = {
    "layerNorm": {
        "layerNorm": "keras.layers.LayerNormalization(axis, epsilon, dtype)(x): keras.ops.layer_normalization, tf.nn.moments (two-pass) then x * inv + (beta - mean * inv), inv = rsqrt(var + eps) * gamma; gamma/beta of shape x.shape[axis:] written flat row-major",
        "layerNormBackward": GRAD + " (gamma, beta)",
    },
    "rmsNorm": {
        "rmsNorm": "keras.layers.RMSNormalization(axis, epsilon, dtype)(x): keras.ops.rms_normalization, x * rsqrt(mean(square(x)) + eps) * scale; the layer's `scale` is the contract's gamma",
        "rmsNormBackward": GRAD + " (scale)",
    },
    "groupNorm": {
        "groupNorm": "keras.layers.GroupNormalization(groups, axis, epsilon, dtype)(x): reshape to [.., groups, C/groups, ..], tf.nn.moments over the group's channels and every other non-batch axis, x * inv + (beta - mean * inv)",
        "groupNormBackward": GRAD + " (gamma, beta)",
    },
    "instanceNorm": {
        "instanceNorm": "keras.layers.GroupNormalization(groups=-1, axis, epsilon, dtype)(x) (groups = -1: one group per channel, Keras's instance normalization)",
        "instanceNormBackward": GRAD + " (gamma, beta)",
    },
}
MIXED_NOTE = {
    "layerNorm": "mixed_float16: float16 x is not autocast (autocast=False); the layer computes in float32 with its float32 gamma/beta and casts y to float16; dx is float16, dgamma/dbeta float32",
    "rmsNorm": "mixed_float16: the layer autocasts its float32 scale to float16 when it reads it (autocast=True), then computes in float32 and casts y to float16; so the float32 gamma in the request is used rounded to float16; dx is float16, dgamma float32",
    "groupNorm": "mixed_float16: float16 x is not autocast (autocast=False); computed in float32 with float32 gamma/beta, cast to float16; dx float16, dgamma/dbeta float32",
}
MIXED_NOTE["instanceNorm"] = MIXED_NOTE["groupNorm"]

# layout names for the channel-axis ops
LAYOUTS = {(2, 1): "NC", (3, 1): "NCL", (3, 2): "NLC", (4, 1): "NCHW", (4, 3): "NHWC", (5, 1): "NCDHW", (5, 4): "NDHWC"}


def case(name, op, shape, faxis, seed, eps, dtype="float32", groups=None, data="normal", offset_ratio=None,
         policy=None, description="", tags=(), omitted=(), known=None):
    """faxis: the framework's axis argument as given (int or list); groups: GroupNormalization's
    groups argument (-1 for instance normalization); policy: a Keras dtype policy (mixed_float16),
    whose x/y dtype is `dtype` and variables float32; omitted: variants Keras refused, as
    (description, callable that raises) pairs run at export time; known: result field -> (id,
    summary) explaining an output the float64 check finds beyond its bound (the export fails if
    the check does not find it, or finds one without an explanation)."""
    return dict(name=name, op=op, shape=list(shape), faxis=faxis, seed=seed, eps=eps, dtype=dtype, groups=groups,
                data=data, offset_ratio=offset_ratio, policy=policy, description=description, tags=list(tags),
                omitted=list(omitted), known=dict(known or {}), param_dtype="float32" if policy else dtype)


RMS_MIXED_DGAMMA = ("keras-rmsnorm-mixed-float16-dgamma-float16", (
    "under mixed_float16, RMSNormalization's scale gradient has float16 precision: the layer autocasts its float32 scale to float16 "
    "(autocast=True), so the gradient w.r.t. the float32 variable passes back through that cast and is rounded to float16 "
    "(every recorded dgamma is a float16 value); LayerNormalization and GroupNormalization (autocast=False) keep float32 gradients"))


def gn_refusal():
    keras.layers.GroupNormalization(groups=4, axis=-1).build((2, 3, 2, 6))


def declare_cases():
    m16 = dict(dtype="float16", policy="mixed_float16")
    ln, rms, gn, inn = "layerNorm", "rmsNorm", "groupNorm", "instanceNorm"
    return [
        # LayerNormalization: axis -1 and trailing axis lists (only contiguous trailing axes are
        # the contract's layerNorm: statistics over axes [axis, rank)).
        case("ln-nc-float32", ln, [4, 6], -1, 1001, 1e-3, description="LayerNormalization axis=-1 on [4, 6] (Keras's default eps 1e-3)"),
        case("ln-nc-float64", ln, [4, 6], -1, 1002, 1e-3, "float64", description="axis=-1, float64"),
        case("ln-nlc-float32", ln, [2, 3, 5], -1, 1003, 1e-5, description="rank 3, axis=-1 (contract axis 2)"),
        case("ln-nlc-axis12-float32", ln, [2, 3, 5], [1, 2], 1004, 1e-3, description="rank 3, axis=[1, 2] (contract axis 1)"),
        case("ln-nhwc-float32", ln, [2, 3, 2, 4], -1, 1005, 1e-3, description="rank 4, axis=-1 (contract axis 3)"),
        case("ln-nhwc-axis23-float32", ln, [2, 3, 2, 4], [2, 3], 1006, 1e-5, description="rank 4, axis=[2, 3] (contract axis 2)"),
        case("ln-nhwc-axis123-float32", ln, [2, 3, 2, 4], [1, 2, 3], 1007, 0.1, description="rank 4, axis=[1, 2, 3] (contract axis 1), eps 0.1"),
        case("ln-nhwc-axis123-float64", ln, [2, 3, 2, 4], [1, 2, 3], 1008, 1e-5, "float64", description="rank 4, axis=[1, 2, 3], float64"),
        case("ln-nhwc-axis-neg1-neg2-float32", ln, [3, 2, 2, 3], [-1, -2], 1009, 1e-3, description="rank 4, negative axes out of order [-1, -2] (contract axis 2; Keras sorts them, gamma has shape [2, 3])"),
        case("ln-ndhwc-axis1234-float32", ln, [2, 2, 2, 2, 3], [1, 2, 3, 4], 1010, 1e-3, description="rank 5, axis=[1, 2, 3, 4] (contract axis 1)"),
        case("ln-eps1-float32", ln, [4, 6], -1, 1011, 1.0, description="eps = 1 (var/(var+eps) far from 1)"),
        case("ln-offset1e4-float32", ln, [4, 8], -1, 1012, 1e-5, data="offset", offset_ratio=1e4, tags=["ill-conditioned"], description="|mean|/std = 1e4 per row in float32"),
        case("ln-offset1e6-float32", ln, [4, 8], -1, 1013, 1e-5, data="offset", offset_ratio=1e6, tags=["ill-conditioned"], description="|mean|/std = 1e6 per row in float32 (x quantized at ~0.06 std)"),
        case("ln-offset1e6-float64", ln, [4, 8], -1, 1014, 1e-5, "float64", data="offset", offset_ratio=1e6, tags=["ill-conditioned"], description="|mean|/std = 1e6 per row in float64"),
        case("ln-onnx-rows-float32", ln, [3, 4], -1, 1015, 1e-5, data="onnx-rows", tags=["ill-conditioned", "constant-row"],
             description="the rows of onnxruntime #28463 (40000, 40001, 40002, 40003: NaN for a one-pass variance) and #21935 (constant 1234.0: variance 0, y = beta), and a normal row"),
        case("ln-constant-row-nlc-axis12-float32", ln, [3, 2, 4], [1, 2], 1016, 1e-3, data="constant-row", tags=["constant-row"], description="row 1 constant 2.5 over axes [1, 2]: variance 0, y = beta"),
        case("ln-large-row-float32", ln, [2, 1024], -1, 1017, 1e-5, tags=["large-group"], description="1024 values per row: long reductions"),
        case("ln-mixed-float16-nc", ln, [4, 6], -1, 1018, 1e-3, description="mixed_float16: float16 x and y, float32 gamma/beta", tags=["mixed-float16"], **m16),
        case("ln-mixed-float16-nhwc-axis123", ln, [2, 3, 2, 4], [1, 2, 3], 1019, 1e-3, description="mixed_float16, axis=[1, 2, 3]", tags=["mixed-float16"], **m16),
        case("ln-mixed-float16-offset100", ln, [4, 16], -1, 1020, 1e-5, data="offset", offset_ratio=100, tags=["mixed-float16", "ill-conditioned"],
             description="mixed_float16, |mean|/std = 100", **m16),
        # RMSNormalization (Keras 3.9+). LayerNormalization(rms_scaling=True) is not recorded: see skipped_rms_scaling().
        case("rms-nc-float32", rms, [4, 6], -1, 1101, 1e-6, description="RMSNormalization axis=-1 (Keras's default eps 1e-6)"),
        case("rms-nc-float64", rms, [4, 6], -1, 1102, 1e-6, "float64", description="RMSNormalization, float64"),
        case("rms-nlc-float32", rms, [2, 3, 5], -1, 1103, 1e-5, description="rank 3, axis=-1"),
        case("rms-nhwc-axis123-float32", rms, [2, 3, 2, 4], [1, 2, 3], 1104, 1e-3, description="rank 4, axis=[1, 2, 3] (contract axis 1)"),
        case("rms-nhwc-axis23-float32", rms, [2, 3, 2, 4], [2, 3], 1105, 1e-5, description="rank 4, axis=[2, 3] (contract axis 2)"),
        case("rms-zero-row-float32", rms, [3, 4], -1, 1106, 1e-6, data="zero-row", tags=["zero-row"], description="row 1 all zeros: mean(x^2) = 0, y = 0, dx = gamma * dy / sqrt(eps)"),
        case("rms-offset1e4-float32", rms, [4, 8], -1, 1107, 1e-6, data="offset", offset_ratio=1e4, description="|mean|/std = 1e4 (no cancellation for RMSNorm)"),
        case("rms-large-row-float32", rms, [2, 1024], -1, 1108, 1e-6, tags=["large-group"], description="1024 values per row"),
        case("rms-mixed-float16-nc", rms, [4, 6], -1, 1109, 1e-5, description="mixed_float16 (the layer rounds its scale to float16)", tags=["mixed-float16"],
             known={"dgamma": RMS_MIXED_DGAMMA}, **m16),
        case("rms-mixed-float16-nhwc-axis123", rms, [2, 3, 2, 4], [1, 2, 3], 1110, 1e-3, description="mixed_float16, axis=[1, 2, 3]", tags=["mixed-float16"],
             known={"dgamma": RMS_MIXED_DGAMMA}, **m16),
        # GroupNormalization: channels-last (axis=-1, Keras's default) and channels-first (axis=1).
        case("gn-nc-g3-float32", gn, [4, 6], -1, 1201, 1e-3, groups=3, description="rank 2, groups 3 of 2 channels"),
        case("gn-nlc-g2-float32", gn, [2, 5, 6], -1, 1202, 1e-3, groups=2, description="rank 3 channels-last, groups 2"),
        case("gn-ncl-g2-float32", gn, [2, 6, 5], 1, 1203, 1e-5, groups=2, description="rank 3 channels-first (axis=1), groups 2"),
        case("gn-nhwc-g3-float32", gn, [2, 3, 2, 6], -1, 1204, 1e-3, groups=3, description="rank 4 channels-last, groups 3",
             omitted=[("groupNorm with groups=4 on C=6", gn_refusal)]),
        case("gn-nchw-g3-float32", gn, [2, 6, 3, 2], 1, 1205, 1e-3, groups=3, description="rank 4 channels-first, groups 3"),
        case("gn-nhwc-g1-float32", gn, [2, 3, 2, 6], -1, 1206, 0.1, groups=1, description="groups 1: one group over all channels and positions (not LayerNormalization: gamma per channel)"),
        case("gn-nchw-g1-float64", gn, [2, 4, 3, 2], 1, 1207, 1e-5, "float64", groups=1, description="groups 1, channels-first, float64"),
        case("gn-nhwc-g2-float64", gn, [2, 3, 2, 4], -1, 1208, 1e-3, "float64", groups=2, description="channels-last, groups 2, float64"),
        case("gn-nhwc-gC-float32", gn, [2, 3, 2, 6], -1, 1209, 1e-3, groups=6, description="groups = C given explicitly (instance normalization as a groupNorm request)"),
        case("gn-offset1e4-nhwc-float32", gn, [2, 3, 2, 4], -1, 1210, 1e-5, groups=2, data="offset", offset_ratio=1e4, tags=["ill-conditioned"], description="|mean|/std = 1e4 per sample in float32"),
        case("gn-constant-group-nchw-float32", gn, [2, 4, 2, 2], 1, 1211, 1e-3, groups=2, data="constant-group", tags=["constant-group"], description="sample 0, group 0 constant 2.5: variance 0, y = beta there"),
        case("gn-large-group-nhwc-float32", gn, [2, 16, 16, 8], -1, 1212, 1e-5, groups=2, tags=["large-group"], description="1024 values per group"),
        case("gn-mixed-float16-nhwc-g2", gn, [2, 3, 2, 4], -1, 1213, 1e-3, groups=2, description="mixed_float16, channels-last", tags=["mixed-float16"], **m16),
        case("gn-mixed-float16-nchw-g3", gn, [2, 6, 3, 2], 1, 1214, 1e-5, groups=3, description="mixed_float16, channels-first", tags=["mixed-float16"], **m16),
        case("in-nhwc-float32", inn, [2, 3, 2, 4], -1, 1301, 1e-3, groups=-1, description="GroupNormalization(groups=-1): instance normalization, channels-last"),
        case("in-nchw-float32", inn, [2, 4, 3, 2], 1, 1302, 1e-5, groups=-1, description="instance normalization, channels-first"),
        case("in-nlc-float64", inn, [2, 5, 4], -1, 1303, 1e-3, "float64", groups=-1, description="instance normalization, rank 3, float64"),
        case("in-mixed-float16-nhwc", inn, [2, 3, 2, 4], -1, 1304, 1e-3, groups=-1, description="instance normalization, mixed_float16", tags=["mixed-float16"], **m16),
    ]


# ---------------------------------------------------------------- axes, groups, data

def contract_axis(c):
    """The contract's axis for the framework's axis argument. layerNorm/rmsNorm: the normalized
    axes must be [axis, rank) (contiguous and trailing), else the case is not expressible."""
    r = len(c["shape"])
    if c["op"] in ("groupNorm", "instanceNorm"):
        a = c["faxis"] % r
        assert a in (1, r - 1), f"{c['name']}: channel axis must be 1 or rank-1"
        return a
    axes = sorted(a % r for a in (c["faxis"] if isinstance(c["faxis"], list) else [c["faxis"]]))
    assert axes == list(range(axes[0], r)) and axes[0] >= 1, f"{c['name']}: axes {axes} are not the contiguous trailing axes"
    return axes[0]


def group_index(shape, axis, op, G):
    """(idx, pidx): idx[g] = flat indices of statistics group g (row-major group order), pidx the
    gamma/beta index of each. layerNorm/rmsNorm: one group per index of axes [0, axis), params over
    [axis, rank); groupNorm/instanceNorm: one group per (sample, group), params per channel."""
    numel = int(np.prod(shape))
    flat = np.arange(numel)
    if op in ("layerNorm", "rmsNorm"):
        n = int(np.prod(shape[axis:]))
        idx = flat.reshape(-1, n)
        return idx, idx % n
    C = shape[axis]
    inner = int(np.prod(shape[axis + 1:]))
    ch = (flat // inner) % C
    gid = (flat // int(np.prod(shape[1:]))) * G + ch // (C // G)
    order = np.argsort(gid, kind="stable")
    idx = order.reshape(shape[0] * G, -1)
    return idx, ch[idx]


def np_dtype(d):
    return np.dtype(d)


def make_x(rng, c, axis, G):
    shape, op = c["shape"], c["op"]
    numel = int(np.prod(shape))
    z = rng.standard_normal(numel)
    if op in ("layerNorm", "rmsNorm"):
        idx, _ = group_index(shape, axis, op, 1)
        unit = np.empty(numel, dtype=np.int64)
        unit[idx] = np.arange(idx.shape[0])[:, None]  # location/spread per row
    else:
        inner = int(np.prod(shape[axis + 1:]))
        sample = np.arange(numel) // int(np.prod(shape[1:]))
        ch = (np.arange(numel) // inner) % shape[axis]
        # per (sample, channel) for normal data; per sample for offset data (every group's |mean|/std ~ ratio)
        unit = sample if c["data"] == "offset" else sample * shape[axis] + ch
    units = int(unit.max()) + 1
    spread = rng.uniform(0.5, 2.0, units)
    if c["data"] == "offset":
        loc = c["offset_ratio"] * spread * rng.choice([-1.0, 1.0], units)
    else:
        loc = rng.uniform(-3.0, 3.0, units)
    x = loc[unit] + spread[unit] * z
    if c["data"] == "onnx-rows":
        assert shape == [3, 4]
        x[0:4] = [40000.0, 40001.0, 40002.0, 40003.0]
        x[4:8] = 1234.0
    elif c["data"] == "constant-row":
        n = int(np.prod(shape[axis:]))
        x[n:2 * n] = 2.5
    elif c["data"] == "zero-row":
        n = int(np.prod(shape[axis:]))
        x[n:2 * n] = 0.0
    elif c["data"] == "constant-group":
        idx, _ = group_index(shape, axis, op, G)
        x[idx[0]] = 2.5
    return x.reshape(shape).astype(np_dtype(c["dtype"]))


def arr(a):
    """Exact doubles of a float16/float32/float64 array, flattened row-major."""
    a = np.asarray(a)
    assert a.dtype in (np.float16, np.float32, np.float64), a.dtype
    return [float(v) for v in a.astype(np.float64).ravel()]


# ---------------------------------------------------------------- the Keras layers

def make_layer(c, axis, G):
    dt = c["policy"] or c["dtype"]
    shape = c["shape"]
    if c["op"] == "layerNorm":
        layer = keras.layers.LayerNormalization(axis=c["faxis"], epsilon=c["eps"], dtype=dt)
    elif c["op"] == "rmsNorm":
        layer = keras.layers.RMSNormalization(axis=c["faxis"], epsilon=c["eps"], dtype=dt)
    else:
        layer = keras.layers.GroupNormalization(groups=c["groups"], axis=c["faxis"], epsilon=c["eps"], dtype=dt)
    layer.build(tuple(shape))
    return layer


def run_keras(c, layer, x, dy):
    xt = tf.constant(x)
    y = layer(xt)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        yb = layer(xt)
        loss = tf.reduce_sum(yb * tf.constant(dy))
    grads = tape.gradient(loss, [xt] + list(layer.trainable_variables))
    assert np.array_equal(y.numpy(), yb.numpy()), "the same call gave two different outputs"
    out = dict(y=y.numpy(), dx=grads[0].numpy(), dgamma=grads[1].numpy())
    if len(grads) > 2:
        out["dbeta"] = grads[2].numpy()
    return out


# ---------------------------------------------------------------- float64 check

U = {"float16": 2.0**-11, "float32": 2.0**-24, "float64": 2.0**-53}
TINY = {"float16": 2.0**-24, "float32": 2.0**-149, "float64": 0.0}  # smallest subnormal: the absolute floor of a rounding


def exact(op, x, dy, gamma, beta, eps, idx, pidx):
    """y, dx, dgamma, dbeta of the contract in float64 (two-pass mean with one correction step)."""
    X = x.astype(np.float64).ravel()[idx]
    DY = dy.astype(np.float64).ravel()[idx]
    Gm = gamma.astype(np.float64)[pidx]
    centered = op != "rmsNorm"
    if centered:
        mu = X.mean(1, keepdims=True)
        mu = mu + (X - mu).mean(1, keepdims=True)
        D = X - mu
    else:
        D = X
    sig = np.sqrt((D * D).mean(1, keepdims=True) + eps)
    XH = D / sig
    Y = XH * Gm + (beta.astype(np.float64)[pidx] if centered else 0.0)
    G = DY * Gm
    DX = (G - (G.mean(1, keepdims=True) if centered else 0.0) - XH * (G * XH).mean(1, keepdims=True)) / sig
    P = gamma.size
    out = dict(y=np.empty(X.size), dx=np.empty(X.size))
    out["y"][idx] = Y
    out["dx"][idx] = DX
    out["dgamma"] = np.bincount(pidx.ravel(), (DY * XH).ravel(), P)
    if centered:
        out["dbeta"] = np.bincount(pidx.ravel(), DY.ravel(), P)
    return out, dict(X=X, DY=DY, Gm=Gm, XH=XH, sig=sig, G=G, B=beta.astype(np.float64)[pidx] if centered else 0.0)


def bounds(op, q, idx, pidx, P, u, u_out, tiny):
    """Per-element bound on |float program - exact| for a program computing in unit roundoff u
    whose outputs are rounded to a narrower dtype of unit roundoff u_out (0 if not narrower).
    Derivation (spec/golden/family-fixtures.spec.ts has the same, commented):
      n values per group, M = max|x| there, s = sqrt(var + eps) (rmsNorm: sqrt(mean(x^2) + eps)).
      A sequential sum of n terms errs by <= n u sum|terms|, so the mean by <= n u M, x - mean by
      <= (n + 2) u M, var relatively by <= 2 (n + 2) u M / s + (n + 1) u, s by half that plus the
      root's few ulp. x_hat = (x - mean)/s thus errs by <= rho (1 + |x_hat|) with
      rho = (n + 8) u (1 + M/s) (rmsNorm: no cancellation, rho = (n + 8) u).
      y = gamma x_hat + beta: rho |gamma| (1 + |x_hat|) + 4 u (|y| + |beta|).
      dx = (g - mean(g) - x_hat mean(g x_hat)) / s, g = gamma dy: each of the three paths errs
      relatively by <= rho + (n + 2) u; twice their absolute sum over s.
      dgamma = sum dy x_hat over k terms: sum |dy| (rho (1 + |x_hat|) + (k + 2) u |x_hat|);
      dbeta = sum dy: (k + 2) u sum |dy|.
      A narrower output (mixed_float16) adds 2 u_out times the absolute scale (the rounding of y/dx
      and, for RMSNormalization, of its float16 scale), and the smallest subnormal."""
    X, DY, Gm, XH, sig, G, B = (q[k] for k in ("X", "DY", "Gm", "XH", "sig", "G", "B"))
    n = X.shape[1]
    centered = op != "rmsNorm"
    M = np.abs(X).max(1, keepdims=True)
    rho = (n + 8) * u * (1 + (M / sig if centered else 0.0))
    ay = np.abs(Gm) * np.abs(XH) + np.abs(B)
    ty = rho * np.abs(Gm) * (1 + np.abs(XH)) + 4 * u * (np.abs(XH * Gm + B) + np.abs(B)) + 2 * u_out * ay + tiny
    aG = np.abs(G)
    scale_dx = (aG + (aG.mean(1, keepdims=True) if centered else 0.0) + (1 + np.abs(XH)) * (aG * (1 + np.abs(XH))).mean(1, keepdims=True)) / sig
    tdx = 2 * (rho + (n + 2) * u) * scale_dx + 2 * u_out * scale_dx + tiny
    k = X.size // P
    out = dict(y=np.empty(X.size), dx=np.empty(X.size))
    out["y"][idx] = ty
    out["dx"][idx] = tdx
    out["dgamma"] = np.bincount(pidx.ravel(), (np.abs(DY) * (rho * (1 + np.abs(XH)) + (k + 2) * u * np.abs(XH))).ravel(), P)
    if centered:
        out["dbeta"] = np.bincount(pidx.ravel(), ((k + 2) * u * np.abs(DY)).ravel(), P)
    return out


def check(c, x, dy, gamma, beta, idx, pidx, got):
    """knownIssues for outputs beyond the bound (framework + float64 reference), and the worst ratio."""
    ex, q = exact(c["op"], x, dy, gamma, beta, c["eps"], idx, pidx)
    comp = "float64" if c["dtype"] == "float64" else "float32"  # Keras computes half inputs in float32
    u_out = U[c["dtype"]] if c["dtype"] != comp else 0.0
    b = bounds(c["op"], q, idx, pidx, gamma.size, U[comp], u_out, TINY[c["dtype"]])
    bref = bounds(c["op"], q, idx, pidx, gamma.size, U["float64"], 0.0, 0.0)
    issues, worst = [], 0.0
    for f, e in ex.items():
        g = np.asarray(got[f], dtype=np.float64).ravel()
        err = np.abs(g - e)
        tol = b[f] + bref[f]
        ratio = err / tol
        i = int(np.argmax(ratio))
        worst = max(worst, float(ratio[i]))
        if ratio[i] > 1:
            assert f in c["known"], f"{c['name']}: {f} beyond its bound (ratio {ratio[i]:.3g}) without an explanation in the case's `known`"
            kid, summary = c["known"][f]
            issues.append(dict(
                id=kid,
                summary=summary,
                evidence=f"{int((ratio > 1).sum())} of {ratio.size} values beyond the {comp} bound; worst {f}[{i}]: Keras {float(g[i])!r}, exact (float64) {float(e[i])!r}, "
                         f"|diff| {float(err[i]):.3g}, bound {float(tol[i]):.3g} (ratio {float(ratio[i]):.3g}); computed by scripts/export_tf_family_fixtures.py",
                affects=[f]))
    stale = set(c["known"]) - {k["affects"][0] for k in issues}
    assert not stale, f"{c['name']}: declared known issues not found: {sorted(stale)}"
    return issues, worst


def skipped_rms_scaling():
    """LayerNormalization(rms_scaling=True) is deprecated and is not the contract's RMSNorm: it
    divides by sqrt(var + eps) (centred variance) without subtracting the mean. Checked here on
    every run so the README's statement stays true for the recorded versions."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((2, 6)) + 3).astype(np.float32)
    g = rng.uniform(0.5, 1.5, 6).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = keras.layers.LayerNormalization(rms_scaling=True, epsilon=1e-3)
        layer.build((2, 6))
    layer.set_weights([g])
    y = layer(x).numpy().astype(np.float64)
    xd = x.astype(np.float64)
    var_form = np.abs(y - xd / np.sqrt(xd.var(1, keepdims=True) + 1e-3) * g).max()
    rms_form = np.abs(y - xd / np.sqrt((xd * xd).mean(1, keepdims=True) + 1e-3) * g).max()
    assert var_form < 1e-5 < rms_form, (var_form, rms_form)
    return f"LayerNormalization(rms_scaling=True): y = x / sqrt(var(x) + eps) * gamma (max diff {var_form:.2g}; from RMSNorm {rms_form:.2g}): not recorded"


# ---------------------------------------------------------------- one case

def export_case(c, versions):
    rng = np.random.default_rng(c["seed"])
    shape = c["shape"]
    axis = contract_axis(c)
    C = shape[axis]
    G = {"groupNorm": c["groups"], "instanceNorm": C}.get(c["op"], 1)
    if c["op"] == "groupNorm":
        assert G > 0 and C % G == 0
    idx, pidx = group_index(shape, axis, c["op"], G)
    P = int(np.prod(shape[axis:])) if c["op"] in ("layerNorm", "rmsNorm") else C
    pdt = np_dtype(c["param_dtype"])
    gamma = rng.uniform(0.5, 1.5, P).astype(pdt)
    beta = rng.uniform(-1.0, 1.0, P).astype(pdt)
    x = make_x(rng, c, axis, G)
    dy = rng.standard_normal(shape).astype(np_dtype(c["dtype"]))

    layer = make_layer(c, axis, G)
    pshape = tuple(w.shape for w in layer.get_weights())
    layer.set_weights([gamma.reshape(pshape[0])] + ([beta.reshape(pshape[1])] if c["op"] != "rmsNorm" else []))
    got = run_keras(c, layer, x, dy)
    assert got["y"].dtype == np_dtype(c["dtype"]) and got["dx"].dtype == np_dtype(c["dtype"]), (got["y"].dtype, got["dx"].dtype)
    assert got["dgamma"].dtype == pdt, got["dgamma"].dtype

    issues, worst = check(c, x, dy, gamma, beta, idx, pidx, got)
    centered = c["op"] != "rmsNorm"
    named = dict(dtype=c["dtype"], paramDtype=c["param_dtype"])
    extra = {"groups": G} if c["op"] == "groupNorm" else {}
    fwd_req = dict(named, x=arr(x), shape=shape, axis=axis, gamma=arr(gamma), eps=c["eps"], **extra)
    if centered:
        fwd_req["beta"] = arr(beta)
    bwd_req = dict(named, x=arr(x), dy=arr(dy), shape=shape, axis=axis, gamma=arr(gamma), eps=c["eps"], **extra)
    bwd_res = dict(dx=arr(got["dx"]), dgamma=arr(got["dgamma"]))
    if centered:
        bwd_res["dbeta"] = arr(got["dbeta"])
    steps = [
        dict(op=c["op"], request=fwd_req, result=dict(y=arr(got["y"]))),
        dict(op=c["op"] + "Backward", request=bwd_req, result=bwd_res),
    ]
    omitted = []
    for what, attempt in c["omitted"]:
        try:
            attempt()
        except Exception as e:  # the framework's refusal, recorded with its message
            omitted.append(f"{what}: Keras raised {type(e).__name__}: {e}")
        else:
            raise AssertionError(f"{c['name']}: expected Keras to refuse {what}")
    r = len(shape)
    fargs = {"axis": c["faxis"], "epsilon": c["eps"]}
    if c["groups"] is not None:
        fargs["groups"] = c["groups"]
    if c["policy"]:
        fargs["dtype"] = c["policy"]
    api = dict(API[c["op"]])
    if c["policy"]:
        api["note"] = MIXED_NOTE[c["op"]]
    tags = set(c["tags"]) | {f"rank{r}", c["dtype"], c["data"], f"eps-{c['eps']:g}", f"op-{c['op']}"}
    if c["op"] in ("groupNorm", "instanceNorm"):
        tags.add("channels-last" if axis == r - 1 else "channels-first")
        if c["op"] == "groupNorm":
            tags.add(f"groups-{G}")
    else:
        tags.add(f"axis-{axis}")
    doc = {
        "format": FORMAT,
        "name": f"keras-{c['name']}",
        "description": c["description"],
        "generator": {
            "name": "scripts/export_tf_family_fixtures.py",
            "language": "python",
            "runtime": f"python {platform.python_version()}",
            "packages": versions,
            "settings": {"KERAS_BACKEND": "tensorflow", "TF_ENABLE_ONEDNN_OPTS": "0", "intraOpThreads": 1, "interOpThreads": 1, "device": "CPU"},
        },
        "api": api,
        "frameworkArgs": fargs,
        "op": c["op"],
        "dtype": c["dtype"],
        **({"paramDtype": c["param_dtype"]} if c["param_dtype"] != c["dtype"] else {}),
        "shape": shape,
        "axis": axis,
        **extra,
        **({"layout": LAYOUTS[(r, axis)]} if c["op"] in ("groupNorm", "instanceNorm") else {}),
        "groupCount": int(idx.shape[0]),
        "groupSize": int(idx.shape[1]),
        "seed": c["seed"],
        "eps": c["eps"],
        "data": {"kind": c["data"], **({"offsetToSpread": c["offset_ratio"]} if c["offset_ratio"] else {})},
        "tags": sorted(tags),
        **({"knownIssues": issues} if issues else {}),
        **({"omitted": omitted} if omitted else {}),
        "steps": steps,
    }
    return doc, worst


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fixtures" / "keras-family"
    out.mkdir(parents=True, exist_ok=True)
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    assert keras.backend.backend() == "tensorflow"
    cases = declare_cases()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    for old in out.glob("keras-*.json"):
        old.unlink()
    for c in cases:
        doc, worst = export_case(c, versions)
        (out / f"{doc['name']}.json").write_text(dump(doc) + "\n")
        flag = "  KNOWN ISSUE" if "knownIssues" in doc else ""
        print(f"{doc['name']}: worst error/bound {worst:.3g}{flag}")
    print(skipped_rms_scaling())
    print(f"wrote {len(cases)} Keras family fixtures to {out}")
    if len(sys.argv) <= 1:
        write_manifest(ROOT / "fixtures")
        print("rewrote fixtures/manifest.json")


if __name__ == "__main__":
    main()
