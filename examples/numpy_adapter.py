#!/usr/bin/env python3
"""A Batch Normalization in plain Python + numpy, checked through bn-conformance's --exec door.

    npx bn-conformance check --exec "python3 examples/numpy_adapter.py"
    npx bn-conformance check --exec "python3 examples/numpy_adapter.py --profile keras"

The protocol (CONTRACT.md, "The language-neutral door"): one JSON request a line on stdin, one
JSON answer a line on stdout; arrays are {"b64": base64 of the little-endian bytes}. The first
request is {"id":0,"op":"describe"}. An error is answered {"id":N,"error":"message"}.
Statistics are two-pass, computed in the request's dtype (numpy's pairwise sums); float16 x with
float32 parameters is computed in float32 and y / dx rounded once to float16.

It also answers the synchronized ops (forwardTrainSync, backwardSync; CONTRACT.md,
"Synchronized BatchNorm") the way a real multi-device implementation does: every replica reduces
its own shard to (count, mean, M2) and the partials are merged one replica after another by
Chan's update, in the request's dtype, never by summing squares (float32 / float64 only).

And the normalization family (contract 0.3.0: layerNorm, rmsNorm, groupNorm, instanceNorm and
their backward ops), the worked example for any language: every op is one grouping of x into
statistics groups (src/contract/grouping.ts) seen here as a 4-D view [A, G, K, S], statistics
over (K, S), gamma indexed by (G, K):
    layerNorm / rmsNorm at axis a:  [prod(shape[:a]), 1, prod(shape[a:]), 1]
    groupNorm, channel axis moved to 1, G groups:  [N, G, C / G, prod(spatial)]
    instanceNorm:  groupNorm with G = C
Two-pass moments, biased variance, eps inside the root; rmsNorm does not centre. The optional
outputs mean / invStdDev are returned (one per group, row-major (A, G) order).
"""
import base64
import json
import sys

import numpy as np

# momentum convention, running variance fed to the average, what m = 1 does in training
PROFILES = {
    "pytorch": ("update-fraction", "unbiased", "error"),
    "keras": ("decay", "biased", "allowed"),
    "onnx": ("decay", "biased", "allowed"),
    "tensorflow-fused": ("decay", "unbiased", "allowed"),
    "paper": ("decay", "unbiased", "error"),
}
PROFILE = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else "pytorch"
MOMENTUM, RUNNING_VAR, SINGLE_VALUE = PROFILES[PROFILE]
LE = {"float32": "<f4", "float64": "<f8", "float16": "<f2"}
# float16 activations (contract 0.2.0, with float32 parameters) are computed in float32 and y / dx
# rounded once to float16 when encoded (numpy rounds to nearest even)
COMPUTE = {"float32": "float32", "float64": "float64", "float16": "float32"}
ACTIVATIONS = {"x", "dy", "y", "dx"}


def arr(v, dtype):
    return np.frombuffer(base64.b64decode(v["b64"]), dtype=LE[dtype]).astype(COMPUTE[dtype])


def enc(a, dtype):
    return {"b64": base64.b64encode(np.ascontiguousarray(a, dtype=LE[dtype]).tobytes()).decode("ascii")}


def channels_last(x, shape, axis):
    """(m, C) view with the channel axis last, and how to undo it."""
    t = np.moveaxis(x.reshape(shape), axis, -1)
    moved = t.shape
    return t.reshape(-1, shape[axis]), lambda a: np.moveaxis(a.reshape(moved), -1, axis).reshape(-1)


def moments(x2):
    mean = x2.mean(axis=0)
    var = ((x2 - mean) ** 2).mean(axis=0)
    return mean, var


def forward_train(r, dt, pdt):
    x2, back = channels_last(arr(r["x"], dt), r["shape"], r["axis"])
    m = x2.shape[0]
    if m == 1 and SINGLE_VALUE == "error":
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {r['shape']}")
    gamma, beta = arr(r["gamma"], pdt), arr(r["beta"], pdt)
    mean, var = moments(x2)
    y = gamma * (x2 - mean) / np.sqrt(var + np.asarray(r["eps"], dtype=COMPUTE[dt])) + beta
    mom = r["momentum"]  # a Python float: 1 - momentum is formed before rounding to dt (no cancellation)
    keep, take = (mom, 1 - mom) if MOMENTUM == "decay" else (1 - mom, mom)
    batch_var = var * (m / max(m - 1, 1)) if RUNNING_VAR == "unbiased" else var
    rm = keep * arr(r["runningMean"], pdt) + take * mean
    rv = keep * arr(r["runningVar"], pdt) + take * batch_var
    return {"y": back(y), "mean": mean, "variance": var, "runningMean": rm, "runningVar": rv}


def forward_infer(r, dt, pdt):
    x2, back = channels_last(arr(r["x"], dt), r["shape"], r["axis"])
    gamma, beta = arr(r["gamma"], pdt), arr(r["beta"], pdt)
    rm, rv = arr(r["runningMean"], pdt), arr(r["runningVar"], pdt)
    return {"y": back(gamma * (x2 - rm) / np.sqrt(rv + np.asarray(r["eps"], dtype=COMPUTE[dt])) + beta)}


def backward(r, dt, pdt):
    x2, back = channels_last(arr(r["x"], dt), r["shape"], r["axis"])
    dy2, _ = channels_last(arr(r["dy"], dt), r["shape"], r["axis"])
    gamma = arr(r["gamma"], pdt)
    eps = np.asarray(r["eps"], dtype=COMPUTE[dt])
    if r["training"]:
        if x2.shape[0] == 1 and SINGLE_VALUE == "error":
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = moments(x2)
    else:
        mean, var = arr(r["runningMean"], pdt), arr(r["runningVar"], pdt)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x2 - mean) * invstd
    dgamma = (dy2 * xhat).sum(axis=0)
    dbeta = dy2.sum(axis=0)
    if r["training"]:
        dx = gamma * invstd * (dy2 - dy2.mean(axis=0) - xhat * (dy2 * xhat).mean(axis=0))
    else:
        dx = dy2 * (gamma * invstd)
    return {"dx": back(dx), "dgamma": dgamma, "dbeta": dbeta}


def local_moments(x2, dt):
    """One replica's (count, mean, M2) per channel; an empty shard is (0, 0, 0)."""
    n = x2.shape[0]
    if n == 0:
        zero = np.zeros(x2.shape[1], dtype=dt)
        return 0, zero, zero
    mean = x2.mean(axis=0)
    return n, mean, ((x2 - mean) ** 2).sum(axis=0)


def chan_merge(parts, dt):
    """Merge (count, mean, M2) partials replica after replica (Chan, Golub & LeVeque)."""
    n, mean, m2 = parts[0]
    for nb, mb, m2b in parts[1:]:
        if nb == 0:
            continue
        if n == 0:
            n, mean, m2 = nb, mb, m2b
            continue
        total = n + nb
        delta = mb - mean
        mean = mean + delta * np.dtype(dt).type(nb / total)
        m2 = m2 + m2b + delta * delta * np.dtype(dt).type(n * nb / total)
        n = total
    return n, mean, m2


def sync_shards(r, dt, with_dy=False):
    out = []
    for s in r["shards"]:
        x2, back = channels_last(arr(s["x"], dt), s["shape"], r["axis"])
        dy2 = channels_last(arr(s["dy"], dt), s["shape"], r["axis"])[0] if with_dy else None
        out.append((x2, dy2, back))
    return out


def global_moments(shards, dt):
    n, mean, m2 = chan_merge([local_moments(x2, dt) for x2, _, _ in shards], dt)
    if n == 1 and SINGLE_VALUE == "error":
        raise ValueError("Expected more than 1 value per channel when training (global batch)")
    return n, mean, m2 / np.dtype(dt).type(n)


def forward_train_sync(r, dt):
    pdt = r["paramDtype"]
    shards = sync_shards(r, dt)
    n, mean, var = global_moments(shards, dt)
    gamma, beta = arr(r["gamma"], pdt), arr(r["beta"], pdt)
    inv = 1 / np.sqrt(var + np.asarray(r["eps"], dtype=dt))
    mom = r["momentum"]
    keep, take = (mom, 1 - mom) if MOMENTUM == "decay" else (1 - mom, mom)
    batch_var = var * (n / max(n - 1, 1)) if RUNNING_VAR == "unbiased" else var  # the global count
    rm = keep * arr(r["runningMean"], pdt) + take * mean
    rv = keep * arr(r["runningVar"], pdt) + take * batch_var
    replicas = [{"y": enc(back(gamma * (x2 - mean) * inv + beta), dt), "runningMean": enc(rm, pdt), "runningVar": enc(rv, pdt)} for x2, _, back in shards]
    return {"replicas": replicas, "mean": enc(mean, pdt), "variance": enc(var, pdt)}


def backward_sync(r, dt):
    pdt = r["paramDtype"]
    shards = sync_shards(r, dt, with_dy=True)
    n, mean, var = global_moments(shards, dt)
    gamma = arr(r["gamma"], pdt)
    invstd = 1 / np.sqrt(var + np.asarray(r["eps"], dtype=dt))
    # each replica's partial sums, then all-reduced (replica after replica)
    sum_dy = np.zeros_like(mean)
    sum_dy_xhat = np.zeros_like(mean)
    for x2, dy2, _ in shards:
        sum_dy = sum_dy + dy2.sum(axis=0)
        sum_dy_xhat = sum_dy_xhat + (dy2 * ((x2 - mean) * invstd)).sum(axis=0)
    q, p = sum_dy / np.dtype(dt).type(n), sum_dy_xhat / np.dtype(dt).type(n)
    replicas = [{"dx": enc(back(gamma * invstd * (dy2 - q - (x2 - mean) * invstd * p)), dt)} for x2, dy2, back in shards]
    return {"replicas": replicas, "dgamma": enc(sum_dy_xhat, pdt), "dbeta": enc(sum_dy, pdt)}


# ---------------------------------------------------------------- the normalization family

def family_view(r, op):
    """(x4, to_flat, (A, G, K, S)): x as the [A, G, K, S] view of its grouping (module docstring)
    and the function that lays a tensor of that view back out in x's own order."""
    shape, axis = list(r["shape"]), r["axis"]
    rank = len(shape)
    if op in ("layerNorm", "rmsNorm"):
        if not 1 <= axis < rank:
            raise ValueError(f"axis must be in [1, {rank - 1}] for shape {shape}, got {axis}")
        dims = (int(np.prod(shape[:axis])), 1, int(np.prod(shape[axis:])), 1)
        return dims, lambda a: a.reshape(-1)
    if axis not in (1, rank - 1):
        raise ValueError(f"the channel axis must be 1 or {rank - 1} for shape {shape}, got {axis}")
    if op == "instanceNorm" and rank < 3:
        raise ValueError(f"instance normalization needs rank >= 3, got shape {shape}")
    C = shape[axis]
    G = C if op == "instanceNorm" else r["groups"]
    if not (isinstance(G, int) and G >= 1 and C % G == 0):
        raise ValueError(f"groups must be a positive integer dividing C = {C}, got {G}")
    moved = [shape[0], C] + [d for i, d in enumerate(shape) if i not in (0, axis)]
    S = int(np.prod(moved[2:]))
    if op == "instanceNorm" and S == 1 and SINGLE_VALUE == "error":
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {shape}")
    return (shape[0], G, C // G, S), lambda a: np.moveaxis(a.reshape(moved), 1, axis).reshape(-1)


def family_inputs(r, op, dt, pdt):
    dims, to_flat = family_view(r, op)
    shape, axis = list(r["shape"]), r["axis"]

    def view(flat):  # x or dy in the [A, G, K, S] view
        t = flat.reshape(shape)
        if op in ("groupNorm", "instanceNorm"):
            t = np.moveaxis(t, axis, 1)
        return t.reshape(dims)

    A, G, K, S = dims
    gamma = arr(r["gamma"], pdt).reshape(1, G, K, 1)
    eps = np.asarray(r["eps"], dtype=COMPUTE[dt])
    return view, to_flat, gamma, eps, (A, G)


def family_stats(x4, centred, eps):
    """Per group: mean (two-pass, or 0 for rmsNorm) and 1 / sqrt(biased variance + eps)."""
    if centred:
        mean = x4.mean(axis=(2, 3), keepdims=True)
        d = x4 - mean
    else:
        mean, d = None, x4
    inv = 1 / np.sqrt((d * d).mean(axis=(2, 3), keepdims=True) + eps)
    return mean, d, inv


def family_forward(op):
    centred = op != "rmsNorm"

    def run(r, dt, pdt):
        view, to_flat, gamma, eps, groups = family_inputs(r, op, dt, pdt)
        mean, d, inv = family_stats(view(arr(r["x"], dt)), centred, eps)
        y = d * inv * gamma
        out = {"invStdDev": inv.reshape(-1)}
        if centred:
            A, G = groups
            y = y + arr(r["beta"], pdt).reshape(1, G, -1, 1)
            out["mean"] = mean.reshape(-1)
        out["y"] = to_flat(y)
        return out
    return run


def family_backward(op):
    centred = op != "rmsNorm"

    def run(r, dt, pdt):
        view, to_flat, gamma, eps, _ = family_inputs(r, op, dt, pdt)
        mean, d, inv = family_stats(view(arr(r["x"], dt)), centred, eps)
        dy = view(arr(r["dy"], dt))
        xhat = d * inv
        g = dy * gamma
        mean_g = g.mean(axis=(2, 3), keepdims=True) if centred else 0
        # dx = inv (g - mean(g) - x_hat mean(g x_hat)); rmsNorm: no mean(g) term (d/dx of x inv)
        dx = inv * (g - mean_g - xhat * (g * xhat).mean(axis=(2, 3), keepdims=True))
        out = {"dx": to_flat(dx), "dgamma": (dy * xhat).sum(axis=(0, 3)).reshape(-1)}
        if centred:
            out["dbeta"] = dy.sum(axis=(0, 3)).reshape(-1)
        return out
    return run


FAMILY_OPS = {}
for _op in ("layerNorm", "rmsNorm", "groupNorm", "instanceNorm"):
    FAMILY_OPS[_op] = family_forward(_op)
    FAMILY_OPS[_op + "Backward"] = family_backward(_op)

OPS = {"forwardTrain": forward_train, "forwardInfer": forward_infer, "backward": backward, **FAMILY_OPS}
# answers already encoded (nested: one entry per replica)
SYNC_OPS = {"forwardTrainSync": forward_train_sync, "backwardSync": backward_sync}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        rid = req.get("id")
        try:
            if req["op"] == "describe":
                out = {"name": f"numpy adapter ({PROFILE})", "profile": PROFILE, "dtypes": ["float32", "float64", "float16"],
                       "precisions": [{"dtype": "float32", "paramDtype": "float32"}, {"dtype": "float64", "paramDtype": "float64"},
                                      {"dtype": "float16", "paramDtype": "float32"}],
                       "ops": list(OPS) + list(SYNC_OPS), "axes": "any"}
            else:
                dt = req["dtype"]
                pdt = req.get("paramDtype", dt)
                if dt == "float16" and pdt != "float32":
                    raise ValueError(f"float16 is supported with float32 parameters, not {pdt}")
                with np.errstate(all="ignore"):
                    if req["op"] in SYNC_OPS:
                        if dt not in ("float32", "float64") or pdt != dt:
                            raise ValueError(f"synchronized ops take float32 or float64 (parameters in the same dtype), not {dt} / {pdt}")
                        out = SYNC_OPS[req["op"]](req, dt)
                    else:
                        res = OPS[req["op"]](req, dt, pdt)
                        out = {k: enc(v, dt if k in ACTIVATIONS else pdt) for k, v in res.items()}
        except Exception as e:  # an error answer: the harness sees a rejected call
            out = {"error": f"{type(e).__name__}: {e}"}
        out["id"] = rid
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
