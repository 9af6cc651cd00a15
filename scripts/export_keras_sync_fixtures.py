#!/usr/bin/env python3
"""Export synchronized-BN golden fixtures from Keras 3 (fixtures/keras-sync/, format
bn-conformance-fixture/1 with forwardTrainSync / backwardSync steps; fixtures/README.md).

The outputs come from examples/keras_sync_adapter.py itself (its forward_train_sync and
backward_sync, given the same requests the --exec door sends): BatchNormalization(synchronized=True)
under MirroredStrategy over logical CPU devices, uneven and empty shards fed per replica.

    /work/venv-tf/bin/python scripts/export_keras_sync_fixtures.py [OUT_DIR]

Then `npx tsx scripts/export-tfjs-fixtures.ts --manifest-only` rebuilds fixtures/manifest.json
(this script also rewrites it when OUT_DIR is the default).
"""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_json import dump, write_manifest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("keras_sync_adapter", ROOT / "examples" / "keras_sync_adapter.py")
adapter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(adapter)  # configures the 16 logical CPUs and the strategy
np, tf, keras = adapter.np, adapter.tf, adapter.keras

FORMAT = "bn-conformance-fixture/1"
API = {
    "forwardTrainSync": "keras.layers.BatchNormalization(axis, momentum, epsilon, synchronized=True)(x, training=True) in MirroredStrategy.run over 16 logical CPUs (one shard per replica via experimental_distribute_values_from_function; replicas past the shards hold no examples); moving statistics read per replica after the call; mean/variance from keras.ops.moments(x, axes, synchronized=True) in the same step",
    "backwardSync": "tf.GradientTape per replica over the same layer, loss_r = reduce_sum(y_r * dy_r); dx_r per replica, dgamma/dbeta summed over replicas (strategy.reduce SUM)",
}
LAYOUTS = {(2, 1): "NC", (3, 1): "NCL", (3, 2): "NLC", (4, 1): "NCHW", (4, 3): "NHWC"}

# name, per-shard shape with the batch axis as None, axis, counts per replica, dtype, data kind, offset/spread
CASES = [
    ("even-4x2-nc-float32", [None, 3], 1, [2, 2, 2, 2], "float32", "normal", None, "4 replicas x 2 examples, NC"),
    ("uneven-1-0-3-nhwc-float32", [None, 2, 2, 3], 3, [1, 0, 3], "float32", "normal", None, "uneven shards: one example, none, three (NHWC)"),
    ("uneven-3-1-2-nchw-float64", [None, 2, 2, 2], 1, [3, 1, 2], "float64", "normal", None, "uneven shards 3 + 1 + 2, NCHW, float64"),
    ("sixteen-replicas-nlc-float32", [None, 2, 3], 2, [1, 2] * 8, "float32", "normal", None, "16 replicas of 1 or 2 examples, NLC"),
    ("two-examples-per-device-float32", [None, 4], 1, [2] * 8, "float32", "normal", None, "8 devices x 2 examples (the detection-model regime)"),
    ("offset1e4-float32", [None, 3], 1, [3, 2, 3], "float32", "offset", 1e4, "|mean|/std = 1e4: Keras's E[x^2] - E[x]^2 loses the variance"),
    ("offset1e4-float64", [None, 3], 1, [3, 2, 3], "float64", "offset", 1e4, "|mean|/std = 1e4 in float64"),
]
KNOWN_ONE_PASS = {
    "id": "keras-sync-one-pass-variance",
    "summary": "Keras 3 synchronized moments all-reduce sum x and sum x^2 and take var = E[x^2] - E[x]^2 in the layer dtype: at |mean|/std = 1e4 the variance loses about u (mean/std)^2 relative (float32: everything normalized with it is wrong by orders of magnitude; float64: 3e-9 where the bound is 1e-10)",
    "evidence": "keras/src/backend/tensorflow/nn.py _compute_moments_sync (keras 3.15.1): variance = tf.maximum(y_squared_mean - tf.square(mean), 0.0); bn-conformance bn:sync:large-offset (docs/adapters.md)",
    "affects": ["replicas.y", "replicas.runningVar", "variance", "replicas.dx", "dgamma"],
}


def b64(a, dt):
    return {"b64": base64.b64encode(np.ascontiguousarray(a, dtype=adapter.LE[dt]).tobytes()).decode("ascii")}


def plain(a):
    return [float(v) for v in np.asarray(a).reshape(-1)]


def decode(v, dt):
    return np.frombuffer(base64.b64decode(v["b64"]), dtype=adapter.LE[dt]).astype(dt)


def export_case(name, template, axis, counts, dt, kind, ratio, description, seed):
    rng = np.random.default_rng(seed)
    batch_axis = 1 if axis == 0 else 0
    shapes = [[n if k == batch_axis else d for k, d in enumerate(template)] for n in counts]
    C = template[axis]
    scale = rng.uniform(0.5, 2.0, C)
    center = rng.uniform(-2, 2, C) if kind == "normal" else ratio * rng.uniform(0.5, 1.0, C) * scale
    def data(shape):
        z = rng.standard_normal(shape)
        bshape = [1] * len(shape)
        bshape[axis] = C
        return (center.reshape(bshape) + scale.reshape(bshape) * z).astype(dt)
    xs = [data(s) for s in shapes]
    dys = [rng.standard_normal(s).astype(dt) for s in shapes]
    gamma = rng.uniform(0.5, 1.5, C).astype(dt)
    beta = rng.uniform(-0.5, 0.5, C).astype(dt)
    rmean = rng.uniform(-1, 1, C).astype(dt)
    rvar = rng.uniform(0.5, 2.0, C).astype(dt)
    eps, momentum = 1e-3, 0.9
    fwd = {"op": "forwardTrainSync", "axis": axis, "eps": eps, "momentum": momentum, "dtype": dt, "paramDtype": dt,
           "shards": [{"x": b64(x, dt), "shape": s} for x, s in zip(xs, shapes)],
           "gamma": b64(gamma, dt), "beta": b64(beta, dt), "runningMean": b64(rmean, dt), "runningVar": b64(rvar, dt)}
    out = adapter.forward_train_sync(fwd, dt)
    bwd = {"op": "backwardSync", "axis": axis, "eps": eps, "dtype": dt, "paramDtype": dt,
           "shards": [{"x": b64(x, dt), "dy": b64(dy, dt), "shape": s} for x, dy, s in zip(xs, dys, shapes)], "gamma": b64(gamma, dt)}
    back = adapter.backward_sync(bwd, dt)
    steps = [
        {"op": "forwardTrainSync",
         "request": {"shards": [{"x": plain(x), "shape": s} for x, s in zip(xs, shapes)], "axis": axis, "gamma": plain(gamma), "beta": plain(beta),
                     "eps": eps, "momentum": momentum, "runningMean": plain(rmean), "runningVar": plain(rvar), "dtype": dt, "paramDtype": dt},
         "result": {"replicas": [{k: plain(decode(v, dt)) for k, v in rep.items()} for rep in out["replicas"]],
                    "mean": plain(decode(out["mean"], dt)), "variance": plain(decode(out["variance"], dt))}},
        {"op": "backwardSync",
         "request": {"shards": [{"x": plain(x), "dy": plain(dy), "shape": s} for x, dy, s in zip(xs, dys, shapes)], "axis": axis, "gamma": plain(gamma),
                     "eps": eps, "dtype": dt, "paramDtype": dt},
         "result": {"replicas": [{"dx": plain(decode(rep["dx"], dt))} for rep in back["replicas"]],
                    "dgamma": plain(decode(back["dgamma"], dt)), "dbeta": plain(decode(back["dbeta"], dt))}},
    ]
    total = list(template)
    total[batch_axis] = sum(counts)
    m = int(np.prod(total)) // C
    doc = {
        "format": FORMAT,
        "name": f"keras-sync-{name}",
        "description": description,
        "generator": {
            "name": "scripts/export_keras_sync_fixtures.py",
            "language": "python",
            "runtime": f"python {platform.python_version()}",
            "packages": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
            "settings": {"device": "CPU", "logicalDevices": adapter.MAX_REPLICAS, "strategy": "MirroredStrategy"},
        },
        "api": API,
        "profile": "keras",
        "dtype": dt,
        "shape": total,
        "axis": axis,
        "layout": LAYOUTS.get((len(total), axis), f"axis{axis}"),
        "m": m,
        "counts": counts,
        "seed": seed,
        "eps": eps,
        "momentum": momentum,
        "momentumConvention": "decay: running = momentum * running + (1 - momentum) * batch",
        "data": {"kind": kind, **({"offsetToSpread": ratio} if ratio else {})},
        "tags": sorted({"sync", f"replicas-{len(counts)}", dt, kind} | ({"uneven"} if len(set(counts)) > 1 else set()) | ({"empty-replica"} if 0 in counts else set())),
        "steps": steps,
    }
    if kind == "offset":
        doc["knownIssues"] = [KNOWN_ONE_PASS]
    return doc


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fixtures" / "keras-sync"
    out.mkdir(parents=True, exist_ok=True)
    for i, (name, template, axis, counts, dt, kind, ratio, description) in enumerate(CASES):
        doc = export_case(name, template, axis, counts, dt, kind, ratio, description, seed=100 + i)
        (out / f"{doc['name']}.json").write_text(dump(doc) + "\n")
        print(f"wrote {doc['name']}.json")
    if len(sys.argv) <= 1:
        write_manifest(ROOT / "fixtures")
        print("rewrote fixtures/manifest.json")


if __name__ == "__main__":
    main()
