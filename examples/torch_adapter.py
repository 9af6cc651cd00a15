#!/usr/bin/env python3
"""PyTorch's own Batch Normalization, checked through bn-conformance's --exec door.

    npx bn-conformance check --exec "python3 examples/torch_adapter.py"

Forward: torch.nn.functional.batch_norm (training and inference), with the running statistics
updated in place by torch itself; the batch mean and biased variance come from
torch.var_mean(correction=0) over the same dims. Backward: autograd through F.batch_norm.
The channel axis is moved to dim 1 (torch's layout) and back. float32 and float64.
Protocol: CONTRACT.md, "The language-neutral door" (NDJSON, arrays as {"b64": little-endian}).
"""
import base64
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
DT = {"float32": torch.float32, "float64": torch.float64}
LE = {"float32": "<f4", "float64": "<f8"}


def t(v, dtype):
    a = np.frombuffer(base64.b64decode(v["b64"]), dtype=LE[dtype]).copy()
    return torch.from_numpy(a)


def enc(x, dtype):
    return {"b64": base64.b64encode(x.detach().contiguous().numpy().astype(LE[dtype]).tobytes()).decode("ascii")}


def to_torch_layout(flat, shape, axis):
    return flat.reshape(shape).movedim(axis, 1)


def from_torch_layout(x, axis):
    return x.movedim(1, axis).reshape(-1)


def reduce_dims(x):
    return [d for d in range(x.dim()) if d != 1]


def forward_train(r, dt):
    x = to_torch_layout(t(r["x"], dt), r["shape"], r["axis"])
    rm, rv = t(r["runningMean"], dt), t(r["runningVar"], dt)
    y = F.batch_norm(x, rm, rv, t(r["gamma"], dt), t(r["beta"], dt), training=True, momentum=r["momentum"], eps=r["eps"])
    var, mean = torch.var_mean(x, dim=reduce_dims(x), correction=0)
    return {"y": from_torch_layout(y, r["axis"]), "mean": mean, "variance": var, "runningMean": rm, "runningVar": rv}


def forward_infer(r, dt):
    x = to_torch_layout(t(r["x"], dt), r["shape"], r["axis"])
    y = F.batch_norm(x, t(r["runningMean"], dt), t(r["runningVar"], dt), t(r["gamma"], dt), t(r["beta"], dt), training=False, eps=r["eps"])
    return {"y": from_torch_layout(y, r["axis"])}


def backward(r, dt):
    x = to_torch_layout(t(r["x"], dt), r["shape"], r["axis"]).clone().requires_grad_(True)
    dy = to_torch_layout(t(r["dy"], dt), r["shape"], r["axis"])
    gamma = t(r["gamma"], dt).requires_grad_(True)
    beta = torch.zeros_like(gamma).requires_grad_(True)
    if r["training"]:
        y = F.batch_norm(x, None, None, gamma, beta, training=True, eps=r["eps"])
    else:
        y = F.batch_norm(x, t(r["runningMean"], dt), t(r["runningVar"], dt), gamma, beta, training=False, eps=r["eps"])
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
                out = {"name": f"torch {torch.__version__} F.batch_norm", "profile": "pytorch", "dtypes": ["float32", "float64"], "ops": list(OPS), "axes": "any"}
            else:
                dt = req["dtype"]
                res = OPS[req["op"]](req, dt)
                out = {k: enc(v, dt) for k, v in res.items()}
        except Exception as e:  # torch's own refusals (m = 1 in training) become error answers
            out = {"error": f"{type(e).__name__}: {e}"}
        out["id"] = rid
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
