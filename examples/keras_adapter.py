#!/usr/bin/env python3
"""Keras 3's normalization layers, checked through bn-conformance's --exec door (contract 0.3.0,
the normalization family). The backend is Keras's own choice, KERAS_BACKEND:

    KERAS_BACKEND=tensorflow npx bn-conformance check --exec "python3 examples/keras_adapter.py --ops layerNorm"
    (--ops rmsNorm | groupNorm | instanceNorm | a comma list | family (default); KERAS_BACKEND
     tensorflow | jax | torch | numpy)

  layerNorm     keras.layers.LayerNormalization(axis=[a, ..., rank-1], epsilon); gamma and beta
                (shape shape[a:]) set from the request
  rmsNorm       keras.layers.RMSNormalization(axis=[a, ..., rank-1], epsilon); its `scale` is gamma
  groupNorm     keras.layers.GroupNormalization(groups, axis=1 or -1, epsilon)
  instanceNorm  keras.layers.GroupNormalization(groups=-1, ...): Keras's instance normalization
Forward: the layer called on x, weights assigned from the request. Backward: the backend's own
autodiff of the same call, the vector-Jacobian product with dy (tensorflow: tf.GradientTape
output_gradients; jax: jax.vjp of layer.stateless_call; torch: y.backward(dy)); the numpy
backend has no autodiff, so it declares the forward ops only. Keras keeps no statistics to
return (mean / invStdDev are optional in the contract and not sent).

Precisions are Keras dtype policies: float32, float64, mixed_float16 (float16 x / y, float32
variables), mixed_bfloat16, and the pure float16 / bfloat16 policies (variables in half too).
Every policy the backend runs is declared (DECLARED below; docs/adapters.md says how they were
found); the judge, not the adapter, says which are right. Profile: keras (m = 1 allowed).
Subnormals: measured at describe time; where the backend flushes them to zero (TensorFlow's CPU
kernels do, float32 and float64), the declaration says so (accumulation.subnormals
'flush-to-zero', as the contract allows for FTZ/DAZ code).

LayerNormalization(rms_scaling=True) is not offered: it computes x / sqrt(var(x) + eps) * gamma
(centred variance, uncentred numerator), which no op of the contract is (rmsNorm divides by
sqrt(mean(x^2) + eps)); Keras itself deprecates it for that reason.
Protocol: CONTRACT.md, "The language-neutral door" (NDJSON, arrays as {"b64": little-endian}).
"""
import base64
import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
warnings.simplefilter("ignore")

import numpy as np  # noqa: E402
import ml_dtypes  # noqa: E402
import keras  # noqa: E402

BACKEND = keras.backend.backend()
LE = {"float32": "<f4", "float64": "<f8", "float16": "<f2", "bfloat16": "<u2"}
NP = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
ACTIVATIONS = {"x", "dy", "y", "dx"}
# (dtype, paramDtype) -> Keras dtype policy
POLICY = {
    ("float32", "float32"): "float32",
    ("float64", "float64"): "float64",
    ("float16", "float32"): "mixed_float16",
    ("bfloat16", "float32"): "mixed_bfloat16",
    ("float16", "float16"): "float16",
    ("bfloat16", "bfloat16"): "bfloat16",
}
FAMILIES = ("layerNorm", "rmsNorm", "groupNorm", "instanceNorm")
# Every policy each backend runs with each layer, forward and backward (found by calling them:
# docs/adapters.md, "Keras 3"). All six everywhere; kept as a table so a backend that refuses one
# can say so here, and --policies narrows it for a run.
DECLARED = {b: {f: list(POLICY) for f in FAMILIES} for b in ("tensorflow", "jax", "torch", "numpy")}

if BACKEND == "tensorflow":
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
elif BACKEND == "torch":
    import torch

    torch.set_num_threads(1)
elif BACKEND == "jax":
    import jax


def arr(v, dtype, shape=None):
    a = np.frombuffer(base64.b64decode(v["b64"]), dtype=LE[dtype])
    a = a.view(ml_dtypes.bfloat16) if dtype == "bfloat16" else a
    return a.reshape(shape) if shape is not None else a


def enc(a, dtype):
    a = np.ascontiguousarray(np.asarray(a).astype(NP[dtype])).reshape(-1)
    if dtype == "bfloat16":
        a = a.view(np.uint16)
    return {"b64": base64.b64encode(a.astype(LE[dtype]).tobytes()).decode("ascii")}


def to_numpy(v):
    if BACKEND == "torch" and hasattr(v, "detach"):
        v = v.detach().cpu()
        return v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()  # bfloat16 exactly in float32
    return keras.ops.convert_to_numpy(v)


LAYERS = {}  # built layers by configuration: building one costs ~20 ms, a call ~5 ms (weights are assigned per request)


def make_layer(op, r, policy):
    key = (op, tuple(r["shape"]), r["axis"], r.get("groups"), r["eps"], policy)
    if key not in LAYERS:
        if len(LAYERS) >= 256:
            LAYERS.pop(next(iter(LAYERS)))
        LAYERS[key] = build_layer(op, r, policy)
    return LAYERS[key]


def build_layer(op, r, policy):
    rank = len(r["shape"])
    axis, eps = r["axis"], r["eps"]
    if op == "layerNorm":
        layer = keras.layers.LayerNormalization(axis=list(range(axis, rank)), epsilon=eps, dtype=policy)
    elif op == "rmsNorm":
        layer = keras.layers.RMSNormalization(axis=list(range(axis, rank)), epsilon=eps, dtype=policy)
    else:
        if axis not in (1, rank - 1):
            raise ValueError(f"the channel axis must be 1 or {rank - 1}, got {axis}")
        if op == "instanceNorm" and rank < 3:
            raise ValueError(f"instance normalization needs rank >= 3, got shape {r['shape']}")
        groups = -1 if op == "instanceNorm" else r["groups"]
        layer = keras.layers.GroupNormalization(groups=groups, axis=-1 if axis == rank - 1 else 1, epsilon=eps, dtype=policy)
    layer.build(tuple(r["shape"]))
    return layer


def weights(op, r, pdt, layer):
    """The request's gamma (and beta) in the shapes of the layer's own variables, in its order."""
    vs = layer.trainable_variables
    vals = [arr(r["gamma"], pdt)] + ([arr(r["beta"], pdt)] if op != "rmsNorm" and "beta" in r else [])
    if op != "rmsNorm" and len(vals) == 1:  # backward requests carry no beta: zeros (dy alone sets dbeta)
        vals.append(np.zeros_like(vals[0]))
    return [v.reshape(tuple(var.shape)) for v, var in zip(vals, vs)]


def forward(op):
    def run(r, dt, pdt):
        layer = make_layer(op, r, POLICY[(dt, pdt)])
        for var, v in zip(layer.trainable_variables, weights(op, r, pdt, layer)):
            var.assign(v)
        x = arr(r["x"], dt, r["shape"])
        if BACKEND == "torch":
            x = torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16) if dt == "bfloat16" else torch.from_numpy(x.copy())
        return {"y": to_numpy(layer(x))}
    return run


def backward(op):
    def run(r, dt, pdt):
        layer = make_layer(op, r, POLICY[(dt, pdt)])
        w = weights(op, r, pdt, layer)
        x, dy = arr(r["x"], dt, r["shape"]), arr(r["dy"], dt, r["shape"])
        if BACKEND == "tensorflow":
            for var, v in zip(layer.trainable_variables, w):
                var.assign(v)
            xt = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(xt)
                y = layer(xt)
            grads = tape.gradient(y, [xt] + [v.value for v in layer.trainable_variables], output_gradients=tf.constant(dy))
        elif BACKEND == "jax":
            tv = [jax.numpy.asarray(v) for v in w]
            _, vjp = jax.vjp(lambda xx, vv: layer.stateless_call(vv, [], xx)[0], jax.numpy.asarray(x), tv)
            gx, gv = vjp(jax.numpy.asarray(dy))
            grads = [gx] + list(gv)
        else:  # torch
            for var, v in zip(layer.trainable_variables, w):
                var.assign(v)
                var.value.grad = None  # a cached layer: no gradient left from an earlier request
            tt = (lambda a: torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)) if dt == "bfloat16" else (lambda a: torch.from_numpy(a.copy()))
            xt = tt(x).requires_grad_(True)
            y = layer(xt)
            y.backward(tt(dy))
            grads = [xt.grad] + [v.value.grad for v in layer.trainable_variables]
        out = {"dx": to_numpy(grads[0]), "dgamma": to_numpy(grads[1])}
        if op != "rmsNorm":
            out["dbeta"] = to_numpy(grads[2])
        return out
    return run


def flushes_subnormals(dtype):
    """Measured, not assumed: does the backend's arithmetic flush subnormal results to zero? (TensorFlow's
    CPU kernels run with flush-to-zero / denormals-are-zero set, for float32 and float64 alike.)"""
    tiny = np.finfo(NP[dtype]).tiny  # the smallest normal number
    t = keras.ops.convert_to_tensor(np.asarray([tiny], NP[dtype]), dtype=dtype)
    if keras.backend.standardize_dtype(t.dtype) != dtype or float(np.asarray(to_numpy(t), np.float64)[0]) != tiny:
        return False  # the backend does not hold this dtype (jax without x64): nothing to measure
    half = keras.ops.multiply(t, keras.ops.convert_to_tensor(np.asarray([0.5], NP[dtype]), dtype=dtype))
    if keras.backend.standardize_dtype(half.dtype) != dtype:
        return False  # computed in another dtype (Keras's float64 -> float32 promotion off tensorflow): not a flush
    return float(np.asarray(to_numpy(half), np.float64)[0]) == 0.0


def accumulation(dtypes):
    """Declared only where the arithmetic flushes subnormals (the contract's 'flush-to-zero': the judge's
    underflow unit becomes the smallest normal number); sums stay the default the judge assumes
    (sequential, float32 for half data: Keras computes half in float32)."""
    out = {}
    for d in dtypes:
        compute = "float64" if d == "float64" else "float32"
        if flushes_subnormals(compute):
            out[d] = {"dtype": compute, "order": "sequential", "subnormals": "flush-to-zero"}
    return out


def selection():
    arg = sys.argv[sys.argv.index("--ops") + 1] if "--ops" in sys.argv else "family"
    names = list(FAMILIES) if arg == "family" else arg.split(",")
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise SystemExit(f"keras_adapter.py: unknown --ops {unknown}; one of family, {', '.join(FAMILIES)}")
    ops = {}
    for n in names:
        ops[n] = forward(n)
        if BACKEND != "numpy":  # no autodiff in Keras's numpy backend
            ops[n + "Backward"] = backward(n)
    pairs = [p for p in POLICY if all(p in DECLARED[BACKEND][n] for n in names)]
    if "--policies" in sys.argv:  # narrow the run: e.g. --policies float32,mixed_float16
        keep = sys.argv[sys.argv.index("--policies") + 1].split(",")
        pairs = [p for p in pairs if POLICY[p] in keep]
    return names, ops, pairs


def main():
    names, ops, pairs = selection()
    layers = {"layerNorm": "LayerNormalization", "rmsNorm": "RMSNormalization", "groupNorm": "GroupNormalization", "instanceNorm": "GroupNormalization(groups=-1)"}
    api = " + ".join(dict.fromkeys(layers[n] for n in names))
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        rid = req.get("id")
        try:
            if req["op"] == "describe":
                out = {"name": f"keras {keras.__version__} ({BACKEND}) {api}", "profile": "keras",
                       "dtypes": list(dict.fromkeys(d for d, _ in pairs)),
                       "precisions": [{"dtype": d, "paramDtype": p} for d, p in pairs],
                       "ops": list(ops), "axes": "any"}
                acc = accumulation(out["dtypes"])
                if acc:
                    out["accumulation"] = acc
            else:
                dt = req["dtype"]
                pdt = req.get("paramDtype", dt)
                res = ops[req["op"]](req, dt, pdt)
                out = {k: enc(v, dt if k in ACTIVATIONS else pdt) for k, v in res.items()}
        except Exception as e:  # Keras's own refusals become error answers
            out = {"error": f"{type(e).__name__}: {e}"}
        out["id"] = rid
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
