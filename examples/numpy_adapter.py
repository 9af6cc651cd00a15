#!/usr/bin/env python3
"""A Batch Normalization in plain Python + numpy, checked through bn-conformance's --exec door.

    npx bn-conformance check --exec "python3 examples/numpy_adapter.py"
    npx bn-conformance check --exec "python3 examples/numpy_adapter.py --profile keras"

The protocol (CONTRACT.md, "The language-neutral door"): one JSON request a line on stdin, one
JSON answer a line on stdout; arrays are {"b64": base64 of the little-endian bytes}. The first
request is {"id":0,"op":"describe"}. An error is answered {"id":N,"error":"message"}.
Statistics are two-pass, computed in the request's dtype (numpy's pairwise sums); float16 x with
float32 parameters is computed in float32 and y / dx rounded once to float16.
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


OPS = {"forwardTrain": forward_train, "forwardInfer": forward_infer, "backward": backward}


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
                       "ops": list(OPS), "axes": "any"}
            else:
                dt = req["dtype"]
                pdt = req.get("paramDtype", dt)
                if dt == "float16" and pdt != "float32":
                    raise ValueError(f"float16 is supported with float32 parameters, not {pdt}")
                with np.errstate(all="ignore"):
                    res = OPS[req["op"]](req, dt, pdt)
                out = {k: enc(v, dt if k in ACTIVATIONS else pdt) for k, v in res.items()}
        except Exception as e:  # an error answer: the harness sees a rejected call
            out = {"error": f"{type(e).__name__}: {e}"}
        out["id"] = rid
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
