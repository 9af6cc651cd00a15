#!/usr/bin/env python3
"""Keras 3 synchronized BatchNormalization, checked through bn-conformance's --exec door.

    npx bn-conformance check --exec "/work/venv-tf/bin/python examples/keras_sync_adapter.py" --only bn:sync

keras.layers.BatchNormalization(synchronized=True) under tf.distribute.MirroredStrategy over R
logical CPU devices (tf.config.set_logical_device_configuration). One strategy over 16 devices
serves every request: a request with R < 16 shards runs with 16 - R more replicas that hold no
examples (they add zero to every all-reduced sum and count, so the statistics are the R shards'),
and only the first R replicas' results are answered. One strategy, because a second
MirroredStrategy of another size in the same process reuses the collective group keys: TF 2.21
aborts with "Device ... is joining a group with size 2, but that group has size 3".
Each shard is fed to its own replica with experimental_distribute_values_from_function, so uneven
shards (and empty ones) are fed as they are. The layer's own code computes the statistics: Keras 3 all-reduces the per-replica sum x,
sum x^2 and count and takes var = E[x^2] - E[x]^2 (keras/src/backend/tensorflow/nn.py,
_compute_moments_sync). The answer's mean and variance come from the same function
(keras.ops.moments(..., synchronized=True)) in the same replica step.

backwardSync: tf.GradientTape in each replica over loss_r = sum(y_r * dy_r); the all-reduce's
gradient is itself an all-reduce, so dx_r is the gradient of the global loss; dgamma and dbeta
are the replicas' gradients summed (strategy.reduce SUM), as an optimizer step would apply them.

Profile keras (momentum is a decay, biased running variance). Only the sync ops (and describe).
"""
import base64
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # the same kernels as the fixture exporters (reproducible outputs)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")
import keras  # noqa: E402

MAX_REPLICAS = 16
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(MAX_REPLICAS)])
LE = {"float32": "<f4", "float64": "<f8"}
STRATEGY = tf.distribute.MirroredStrategy(devices=[f"/cpu:{i}" for i in range(MAX_REPLICAS)])


def padded(r, dt, field):
    """One array per replica: the shards', then empty ones (0 on the batch axis) up to MAX_REPLICAS."""
    shards = r["shards"]
    if len(shards) > MAX_REPLICAS:
        raise ValueError(f"at most {MAX_REPLICAS} replicas (logical CPU devices configured at start), got {len(shards)}")
    out = [arr(s[field], dt).reshape(s["shape"]) for s in shards]
    empty = list(shards[0]["shape"])
    empty[1 if r["axis"] == 0 else 0] = 0  # the batch axis: the first non-channel axis
    return out + [np.zeros(empty, dtype=dt) for _ in range(MAX_REPLICAS - len(shards))]


def arr(v, dtype):
    return np.frombuffer(base64.b64decode(v["b64"]), dtype=LE[dtype]).astype(dtype)


def enc(a, dtype):
    return {"b64": base64.b64encode(np.ascontiguousarray(np.asarray(a), dtype=LE[dtype]).tobytes()).decode("ascii")}


def make_layer(r, st, shape, dt):
    with st.scope():
        layer = keras.layers.BatchNormalization(axis=r["axis"], momentum=r.get("momentum", 0.99), epsilon=r["eps"], synchronized=True, dtype=dt)
        layer.build(tuple(shape))
        pdt = r["paramDtype"]
        layer.gamma.assign(arr(r["gamma"], pdt).astype(dt))
        if "beta" in r:
            layer.beta.assign(arr(r["beta"], pdt).astype(dt))
            layer.moving_mean.assign(arr(r["runningMean"], pdt).astype(dt))
            layer.moving_variance.assign(arr(r["runningVar"], pdt).astype(dt))
    return layer


def distribute(st, arrays):
    return st.experimental_distribute_values_from_function(lambda ctx: tf.constant(arrays[ctx.replica_id_in_sync_group]))


def reduction_axes(rank, axis):
    return [k for k in range(rank) if k != axis]


def forward_train_sync(r, dt):
    shards = r["shards"]
    st = STRATEGY
    xs = padded(r, dt, "x")
    layer = make_layer(r, st, shards[0]["shape"], dt)
    axes = reduction_axes(len(shards[0]["shape"]), r["axis"])

    def step(x):
        mean, var = keras.ops.moments(x, axes=axes, synchronized=True)
        y = layer(x, training=True)
        return y, tf.identity(layer.moving_mean.value), tf.identity(layer.moving_variance.value), mean, var

    ys, rms, rvs, means, vars_ = st.run(step, args=(distribute(st, xs),))
    local = st.experimental_local_results
    pdt = r["paramDtype"]
    replicas = [
        {"y": enc(y.numpy().reshape(-1), dt), "runningMean": enc(rm.numpy(), pdt), "runningVar": enc(rv.numpy(), pdt)}
        for y, rm, rv in list(zip(local(ys), local(rms), local(rvs)))[: len(shards)]
    ]
    return {"replicas": replicas, "mean": enc(local(means)[0].numpy(), pdt), "variance": enc(local(vars_)[0].numpy(), pdt)}


def backward_sync(r, dt):
    shards = r["shards"]
    st = STRATEGY
    xs = padded(r, dt, "x")
    dys = padded(r, dt, "dy")
    layer = make_layer(r, st, shards[0]["shape"], dt)

    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * dy)
        dx, dgamma, dbeta = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
        return dx, dgamma, dbeta

    dxs, dgs, dbs = st.run(step, args=(distribute(st, xs), distribute(st, dys)))
    pdt = r["paramDtype"]
    dgamma = st.reduce(tf.distribute.ReduceOp.SUM, dgs, axis=None)
    dbeta = st.reduce(tf.distribute.ReduceOp.SUM, dbs, axis=None)
    replicas = [{"dx": enc(dx.numpy().reshape(-1), dt)} for dx in st.experimental_local_results(dxs)[: len(shards)]]
    return {"replicas": replicas, "dgamma": enc(dgamma.numpy(), pdt), "dbeta": enc(dbeta.numpy(), pdt)}


OPS = {"forwardTrainSync": forward_train_sync, "backwardSync": backward_sync}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        rid = req.get("id")
        try:
            if req["op"] == "describe":
                out = {
                    "name": f"keras {keras.__version__} BatchNormalization(synchronized=True), MirroredStrategy on logical CPUs (tf {tf.__version__})",
                    "profile": "keras",
                    "dtypes": ["float32", "float64"],
                    "ops": list(OPS),
                    "axes": "any",
                }
            elif req["op"] in OPS:
                out = OPS[req["op"]](req, req["dtype"])
            else:
                out = {"error": f"op {req['op']} is not supported by this adapter (sync ops only)"}
        except Exception as e:  # an error answer: the harness sees a rejected call
            out = {"error": f"{type(e).__name__}: {e}"}
        out["id"] = rid
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
