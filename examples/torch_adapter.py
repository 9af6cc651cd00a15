#!/usr/bin/env python3
"""PyTorch's own Batch Normalization, checked through bn-conformance's --exec door.

    npx bn-conformance check --exec "python3 examples/torch_adapter.py"

Forward: torch.nn.functional.batch_norm (training and inference), with the running statistics
updated in place by torch itself; the batch mean and biased variance come from
torch.var_mean(correction=0) over the same dims. Backward: autograd through F.batch_norm.
The channel axis is moved to dim 1 (torch's layout) and back. float32 and float64, and half
precision (contract 0.2.0): float16 / bfloat16 activations with float32 parameters (mixed
precision, what autocast and torch.nn.BatchNorm under .half() keep) or with parameters of the
same dtype (pure half); half arrays travel as their 16-bit patterns.
Protocol: CONTRACT.md, "The language-neutral door" (NDJSON, arrays as {"b64": little-endian}).
"""
import base64
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
DT = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}
LE = {"float32": "<f4", "float64": "<f8", "float16": "<f2", "bfloat16": "<i2"}
PRECISIONS = [("float32", "float32"), ("float64", "float64"), ("float16", "float32"), ("bfloat16", "float32"),
              ("float16", "float16"), ("bfloat16", "bfloat16")]
ACTIVATIONS = {"x", "dy", "y", "dx"}


def t(v, dtype):
    a = torch.from_numpy(np.frombuffer(base64.b64decode(v["b64"]), dtype=LE[dtype]).copy())
    return a.view(torch.bfloat16) if dtype == "bfloat16" else a  # bfloat16: the bit patterns, reinterpreted


def enc(x, dtype):
    x = x.detach().to(DT[dtype]).contiguous()
    if dtype == "bfloat16":
        x = x.view(torch.int16)
    return {"b64": base64.b64encode(x.numpy().astype(LE[dtype]).tobytes()).decode("ascii")}


def to_torch_layout(flat, shape, axis):
    return flat.reshape(shape).movedim(axis, 1)


def from_torch_layout(x, axis):
    return x.movedim(1, axis).reshape(-1)


def reduce_dims(x):
    return [d for d in range(x.dim()) if d != 1]


def forward_train(r, dt, pdt):
    x = to_torch_layout(t(r["x"], dt), r["shape"], r["axis"])
    rm, rv = t(r["runningMean"], pdt), t(r["runningVar"], pdt)
    y = F.batch_norm(x, rm, rv, t(r["gamma"], pdt), t(r["beta"], pdt), training=True, momentum=r["momentum"], eps=r["eps"])
    # the batch statistics in the parameters' dtype (mixed: from x widened to float32, as BN's kernel does)
    var, mean = torch.var_mean(x.to(DT[pdt]), dim=reduce_dims(x), correction=0)
    return {"y": from_torch_layout(y, r["axis"]), "mean": mean, "variance": var, "runningMean": rm, "runningVar": rv}


def forward_infer(r, dt, pdt):
    x = to_torch_layout(t(r["x"], dt), r["shape"], r["axis"])
    y = F.batch_norm(x, t(r["runningMean"], pdt), t(r["runningVar"], pdt), t(r["gamma"], pdt), t(r["beta"], pdt), training=False, eps=r["eps"])
    return {"y": from_torch_layout(y, r["axis"])}


def backward(r, dt, pdt):
    x = to_torch_layout(t(r["x"], dt), r["shape"], r["axis"]).clone().requires_grad_(True)
    dy = to_torch_layout(t(r["dy"], dt), r["shape"], r["axis"])
    gamma = t(r["gamma"], pdt).requires_grad_(True)
    beta = torch.zeros_like(gamma).requires_grad_(True)
    if r["training"]:
        y = F.batch_norm(x, None, None, gamma, beta, training=True, eps=r["eps"])
    else:
        y = F.batch_norm(x, t(r["runningMean"], pdt), t(r["runningVar"], pdt), gamma, beta, training=False, eps=r["eps"])
    y.backward(dy)
    return {"dx": from_torch_layout(x.grad, r["axis"]), "dgamma": gamma.grad, "dbeta": beta.grad}


OPS = {"forwardTrain": forward_train, "forwardInfer": forward_infer, "backward": backward}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        rid = req.get("id")
        try:
            if req["op"] == "describe":
                out = {"name": f"torch {torch.__version__} F.batch_norm", "profile": "pytorch",
                       "dtypes": ["float32", "float64", "float16", "bfloat16"],
                       "precisions": [{"dtype": d, "paramDtype": p} for d, p in PRECISIONS],
                       "ops": list(OPS), "axes": "any"}
            else:
                dt = req["dtype"]
                pdt = req.get("paramDtype", dt)
                res = OPS[req["op"]](req, dt, pdt)
                out = {k: enc(v, dt if k in ACTIVATIONS else pdt) for k, v in res.items()}
        except Exception as e:  # torch's own refusals (m = 1 in training) become error answers
            out = {"error": f"{type(e).__name__}: {e}"}
        out["id"] = rid
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
