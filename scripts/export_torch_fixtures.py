#!/usr/bin/env python3
"""Export golden Batch Normalization fixtures computed by real PyTorch (CPU).

Usage:
    python3 scripts/export_torch_fixtures.py [OUT_DIR]        (default: fixtures/pytorch)

Needs torch 2.13 (CPU) and numpy, e.g.
    python3 -m venv /work/venv-torch-fx && /work/venv-torch-fx/bin/pip install torch numpy

Every case is declared once in declare_cases() and written as one JSON file in the format
`bn-conformance-fixture/1` (fixtures/README.md): a sequence of contract requests (forwardTrain,
forwardInfer, backward) with the outputs torch produced for them. The cases follow the `pytorch`
profile: momentum is torch's update fraction (running = (1 - momentum) * running + momentum *
batch) and the running variance takes the unbiased batch variance (m / (m - 1)).

Channels-last cases run torch on a tensor in torch.channels_last / channels_last_3d memory format;
the fixture records that memory as the contract's dense row-major array (NHWC / NDHWC) with the
channel axis last, which is what a kernel reading the same bytes sees.

Determinism: fixed seeds (numpy PCG64 draws in float64, rounded to the dtype by torch), one
intra-op and one inter-op thread, deterministic algorithms, sorted keys, no timestamps.
Re-running reproduces the committed files byte for byte with the versions recorded in each file.
This script rewrites fixtures/manifest.json (every source's files) when OUT_DIR is the default.
"""
from __future__ import annotations

import copy
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_json import dump, write_manifest  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
torch.use_deterministic_algorithms(True)

FORMAT = "bn-conformance-fixture/1"
ROOT = Path(__file__).resolve().parent.parent
DT = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}
HALF = ("float16", "bfloat16")

API_MODULE = {
    "forwardTrain": "torch.nn.{module}(C, eps, momentum, dtype=paramDtype) in train mode, called on x (running_mean/running_var read after each call); batch mean: save_mean of torch.native_batch_norm on the same inputs (the kernel F.batch_norm runs; its y and running update asserted bit-identical); batch variance: torch.var_mean(x, dims, correction=0) (the biased estimator BatchNorm normalizes with; the kernel returns only 1/sqrt(var + eps)), x widened to float32 for half x",
    "forwardInfer": "the same module in eval mode",
    "backward": "torch.autograd.grad of y w.r.t. (x, weight, bias) with grad_outputs dy, through a copy of the module in train mode (batch statistics) or eval mode (running statistics)",
}
API_FUNCTIONAL = {
    "forwardTrain": "torch.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, training=True, momentum, eps) (running statistics updated in place); batch mean: save_mean of torch.native_batch_norm on the same inputs (y and running update asserted bit-identical); batch variance: torch.var_mean(x, dims, correction=0), x widened to float32 for half x",
    "forwardInfer": "torch.nn.functional.batch_norm(..., training=False)",
    "backward": "torch.autograd.grad of F.batch_norm's y w.r.t. (x, weight, bias) with grad_outputs dy (training: batch statistics; inference: running statistics)",
}

LAYOUTS = {
    (2, 1): "NC", (3, 1): "NCL", (4, 1): "NCHW", (5, 1): "NCDHW",
    (4, 3): "NHWC", (5, 4): "NDHWC",
}
MODULES = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d, 5: torch.nn.BatchNorm3d}


# torch's pure-half CPU path: checked against torch 2.13 by the golden spec (these fixtures, and
# only these, are off the exact answer beyond the half bound).
PURE_HALF_ISSUE = {
    "id": "torch-cpu-half-statistics-in-half",
    "summary": "torch CPU BatchNorm with parameters in the activations' half dtype (pure float16/bfloat16) keeps the batch mean and 1/sqrt(var + eps) in that half dtype (save_mean/save_invstd are float16/bfloat16) and normalizes with them: y, dx and dgamma carry the mean rounded to half, |mean| 2^-11 (float16) or 2^-8 (bfloat16) over the spread, beyond the contract's half bound (statistics in float32, each output rounded once). The mixed path (float32 parameters) keeps them in float32 and is within its bound.",
    "evidence": "aten/src/ATen/native/Normalization.cpp (batch_norm_cpu_update_stats_template, batch_norm_cpu_transform_input_template: `const auto dtype = mixed_type ? kFloat : input.scalar_type()`, save_mean/save_invstd of param_t); observed with torch 2.13.0+cpu: torch.native_batch_norm on float16 x with float16 weight returns a float16 save_mean equal to float16(exact mean)",
    "affects": ["y", "dx", "dgamma"],
}


def case(name, api, shape, axis=1, dtype="float32", seed=1, eps=1e-5, momentum=0.1, steps=2,
         data="normal", description="", tags=(), offset_ratio=None, infer=True, backward=True,
         param_dtype=None, known_issues=()):
    """shape/axis: the contract's dense row-major array; axis = rank - 1 means torch runs it in
    channels_last memory format (rank 4/5). param_dtype: the per-channel arrays' dtype when it
    differs from dtype (mixed precision)."""
    return dict(name=name, api=api, shape=list(shape), axis=axis, dtype=dtype, seed=seed, eps=eps,
                momentum=momentum, steps=steps, data=data, description=description, tags=list(tags),
                offset_ratio=offset_ratio, infer=infer, backward=backward, param_dtype=param_dtype or dtype,
                known_issues=list(known_issues))


def declare_cases():
    cases = []
    # 1. Every rank, channels first, the module and the functional API, float32 and float64.
    seed = 700
    for rank, shape in ((2, [6, 3]), (3, [3, 3, 4]), (4, [2, 3, 3, 2]), (5, [2, 3, 2, 2, 2])):
        for dtype, mom in (("float32", 0.1), ("float64", 0.5)):
            seed += 1
            lay = LAYOUTS[(rank, 1)].lower()
            cases.append(case(f"module-{lay}-{dtype}", "module", shape, 1, dtype, seed, 1e-5, mom, steps=3,
                              description=f"torch.nn.BatchNorm{max(rank - 2, 1)}d, {LAYOUTS[(rank, 1)]}, 3 training steps, momentum {mom}"))
    for rank, shape, dtype, mom, eps in ((2, [5, 4], "float32", 0.01, 1e-3), (4, [2, 3, 2, 3], "float32", 0.9, 1e-5),
                                         (5, [2, 2, 2, 3, 2], "float64", 0.3, 1e-5)):
        seed += 1
        lay = LAYOUTS[(rank, 1)].lower()
        cases.append(case(f"functional-{lay}-{dtype}", "functional", shape, 1, dtype, seed, eps, mom, steps=2,
                          description=f"F.batch_norm, {LAYOUTS[(rank, 1)]}, momentum {mom}, eps {eps:g}"))
    # 2. Channels last (memory format), recorded as NHWC / NDHWC row-major with axis = rank - 1.
    cases += [
        case("channels-last-nhwc-float32", "module", [2, 3, 2, 3], 3, "float32", 721, 1e-5, 0.1, 3,
             description="torch.channels_last BatchNorm2d: NCHW tensor with NHWC memory, recorded as NHWC (axis 3)"),
        case("channels-last-nhwc-float64", "functional", [2, 2, 3, 4], 3, "float64", 722, 1e-5, 0.5, 2,
             description="torch.channels_last F.batch_norm, float64, recorded as NHWC"),
        case("channels-last-ndhwc-float32", "module", [2, 2, 2, 2, 3], 4, "float32", 723, 1e-5, 0.1, 2,
             description="torch.channels_last_3d BatchNorm3d, recorded as NDHWC (axis 4)"),
        case("channels-last-ndhwc-float64", "functional", [2, 2, 2, 2, 3], 4, "float64", 724, 1e-3, 0.2, 2,
             description="torch.channels_last_3d F.batch_norm, float64"),
        case("channels-last-large-m-nhwc-float32", "module", [4, 8, 8, 3], 3, "float32", 725, 1e-5, 0.1, 1,
             description="channels_last, m = 256 (the vectorized channels-last reduction)"),
    ]
    # 3. Running statistics over many steps, and the momentum extremes.
    cases += [
        case("multi-step-nchw-float32", "module", [2, 3, 2, 2], 1, "float32", 731, 1e-5, 0.1, 6,
             description="6 training steps: running statistics chained step to step (update fraction 0.1, unbiased variance)"),
        case("multi-step-nc-float64", "functional", [4, 3], 1, "float64", 732, 1e-5, 0.25, 5,
             description="5 training steps, F.batch_norm, float64"),
        case("momentum1-nc-float32", "functional", [4, 3], 1, "float32", 733, 1e-5, 1.0, 2,
             description="momentum 1: the running statistics become the batch mean and the unbiased batch variance"),
        case("momentum0-nchw-float32", "functional", [2, 3, 2, 2], 1, "float32", 734, 1e-5, 0.0, 2,
             description="momentum 0: the running statistics do not move"),
    ]
    # 4. eps variants.
    cases += [
        case("eps1-nc-float32", "module", [6, 3], 1, "float32", 741, 1.0, 0.1, 2, description="eps = 1"),
        case("eps1e-3-nchw-float32", "functional", [2, 3, 2, 2], 1, "float32", 742, 1e-3, 0.1, 2, description="eps = 1e-3 (Keras's default)"),
        case("eps0.1-ncl-float64", "module", [3, 2, 5], 1, "float64", 743, 0.1, 0.1, 2, description="eps = 0.1, float64"),
    ]
    # 5. Offset data (|mean|/std = 1e4), m = 2, constant channel, large m.
    cases += [
        case("offset1e4-nc-float32", "module", [8, 3], 1, "float32", 751, 1e-5, 0.1, 2, data="offset", offset_ratio=1e4,
             tags=["ill-conditioned"], description="|mean|/std = 1e4 in float32"),
        case("offset1e4-nchw-float32", "functional", [2, 3, 2, 3], 1, "float32", 752, 1e-5, 0.5, 1, data="offset", offset_ratio=1e4,
             tags=["ill-conditioned"], description="|mean|/std = 1e4 in float32, NCHW"),
        case("offset1e4-nhwc-float32", "module", [4, 2, 2, 3], 3, "float32", 753, 1e-5, 0.1, 1, data="offset", offset_ratio=1e4,
             tags=["ill-conditioned"], description="|mean|/std = 1e4 in float32, channels_last"),
        case("offset1e4-nc-float64", "module", [8, 3], 1, "float64", 754, 1e-5, 0.1, 2, data="offset", offset_ratio=1e4,
             description="|mean|/std = 1e4 in float64"),
        case("m2-nc-float32", "module", [2, 3], 1, "float32", 761, 1e-5, 0.5, 3, description="m = 2: running variance takes 2 x the biased batch variance"),
        case("m2-ncl-float64", "functional", [2, 3, 1], 1, "float64", 762, 1e-5, 0.1, 2, description="m = 2, rank 3, float64"),
        case("constant-channel-nc-float32", "module", [5, 3], 1, "float32", 763, 1e-5, 0.1, 2, data="constant-channel",
             description="channel 1 is constant: variance 0, y = beta there"),
        case("constant-channel-nchw-float64", "functional", [2, 3, 2, 2], 1, "float64", 764, 1e-5, 0.5, 2, data="constant-channel",
             description="constant channel, float64, NCHW"),
        case("large-m-nc-float32", "module", [256, 4], 1, "float32", 765, 1e-5, 0.1, 1, description="m = 256"),
        case("m1-nc-float32", "module", [1, 3], 1, "float32", 766, 1e-5, 0.1, 1,
             description="m = 1: torch refuses training (recorded under omitted); inference and the inference gradient"),
    ]
    cases += half_cases()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


def half_cases():
    """float16 / bfloat16 activations with float32 parameters (torch CPU's mixed type: autocast,
    or a half model whose BatchNorm was kept in float32), and pure half (parameters of the same
    dtype). torch 2.13 CPU refuses every other parameter dtype; each case records its refusals."""
    m16 = dict(dtype="float16", param_dtype="float32")
    mbf = dict(dtype="bfloat16", param_dtype="float32")
    return [
        case("mixed-float16-nc", "module", [6, 3], 1, seed=801, momentum=0.1, steps=3, description="float16 x, float32 BatchNorm1d, NC, 3 steps", **m16),
        case("mixed-float16-nchw", "functional", [2, 3, 3, 2], 1, seed=802, momentum=0.5, steps=2, description="float16 x, float32 parameters, F.batch_norm NCHW", **m16),
        case("mixed-float16-nhwc", "module", [2, 3, 2, 3], 3, seed=803, momentum=0.1, steps=2, description="float16 x in channels_last, float32 BatchNorm2d, recorded as NHWC", **m16),
        case("mixed-float16-ncdhw", "module", [2, 3, 2, 2, 2], 1, seed=804, eps=1e-3, momentum=0.1, steps=2, description="float16 x, float32 BatchNorm3d", **m16),
        case("mixed-float16-offset100", "module", [16, 3], 1, seed=805, momentum=0.1, steps=1, data="offset", offset_ratio=100,
             tags=["half-edge", "ill-conditioned"], description="float16 x, |mean|/std = 100", **m16),
        case("mixed-bfloat16-nc", "module", [6, 3], 1, seed=811, momentum=0.1, steps=3, description="bfloat16 x, float32 BatchNorm1d, NC, 3 steps", **mbf),
        case("mixed-bfloat16-nchw", "functional", [2, 3, 3, 2], 1, seed=812, momentum=0.5, steps=2, description="bfloat16 x, float32 parameters, F.batch_norm NCHW", **mbf),
        case("mixed-bfloat16-nhwc", "module", [2, 3, 2, 3], 3, seed=813, momentum=0.1, steps=2, description="bfloat16 x in channels_last, float32 BatchNorm2d", **mbf),
        case("mixed-bfloat16-large-m", "module", [256, 4], 1, seed=814, momentum=0.1, steps=1, description="bfloat16 x, m = 256", **mbf),
        case("float16-nchw", "module", [2, 3, 2, 2], 1, "float16", 821, 1e-3, 0.1, 2, description="pure float16: x and the BatchNorm2d parameters/statistics in float16 (torch keeps the batch statistics in float16: off the exact answer)",
             known_issues=[PURE_HALF_ISSUE]),
        case("bfloat16-nc", "functional", [6, 3], 1, "bfloat16", 822, 1e-3, 0.1, 2, description="pure bfloat16: x and the parameters/statistics in bfloat16 (torch keeps the batch statistics in bfloat16: off the exact answer)",
             known_issues=[PURE_HALF_ISSUE]),
    ]


# ---------------------------------------------------------------- data

def tt(a, dtype):
    """A float64 numpy array rounded to dtype by torch (round to nearest even)."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).to(DT[dtype])


def make_data(rng, c, shape, axis, dtype):
    """x (contract layout) with per-channel location and spread; 'offset': |mean|/std = offset_ratio."""
    C = shape[axis]
    bshape = [1] * len(shape)
    bshape[axis] = C
    spread = rng.uniform(0.5, 2.0, C)
    if c["data"] == "offset":
        loc = c["offset_ratio"] * spread * rng.choice([-1.0, 1.0], C)
    else:
        loc = rng.uniform(-3.0, 3.0, C)
    z = rng.standard_normal(shape)
    x = loc.reshape(bshape) + spread.reshape(bshape) * z
    if c["data"] == "constant-channel":
        idx = [slice(None)] * len(shape)
        idx[axis] = min(1, C - 1)
        x[tuple(idx)] = 2.5
    return tt(x, dtype)


def params(rng, C, dtype):
    return (tt(rng.uniform(0.5, 1.5, C), dtype), tt(rng.uniform(-1.0, 1.0, C), dtype),
            tt(rng.uniform(-1.0, 1.0, C), dtype), tt(rng.uniform(0.5, 2.0, C), dtype))


def arr(t):
    """Exact doubles of a tensor (any float dtype), flattened row-major."""
    assert t.dtype in DT.values(), t.dtype
    return t.detach().to(torch.float64).contiguous().reshape(-1).tolist()


# ---------------------------------------------------------------- torch

class TorchRunner:
    """Runs one case. `to_torch` turns a contract-layout tensor into torch's NC... tensor
    (channels_last memory for axis = rank - 1), `from_torch` turns torch's outputs back."""

    def __init__(self, c, gamma, beta, rmean, rvar):
        self.c = c
        rank, axis = len(c["shape"]), c["axis"]
        self.channels_last = axis == rank - 1 and rank >= 4
        assert axis == 1 or self.channels_last, "torch's channel axis is 1, or last through channels_last memory"
        self.fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(rank) if self.channels_last else torch.contiguous_format
        self.dims = [d for d in range(rank) if d != 1]
        self.api = {k: v.replace("{module}", MODULES[rank].__name__) for k, v in (API_MODULE if c["api"] == "module" else API_FUNCTIONAL).items()}
        pdt = DT[c["param_dtype"]]
        if c["api"] == "module":
            self.mod = MODULES[rank](gamma.numel(), eps=c["eps"], momentum=c["momentum"], dtype=pdt)
            with torch.no_grad():
                self.mod.weight.copy_(gamma)
                self.mod.bias.copy_(beta)
                self.mod.running_mean.copy_(rmean)
                self.mod.running_var.copy_(rvar)
            self.mod.train()
        else:
            self.w, self.b, self.rm, self.rv = gamma.clone(), beta.clone(), rmean.clone(), rvar.clone()

    def to_torch(self, t):
        if self.channels_last:
            perm = [0, t.dim() - 1] + list(range(1, t.dim() - 1))  # N...C -> NC... (a channels_last view)
            t = t.permute(*perm)
        out = t.clone(memory_format=self.fmt)
        assert out.is_contiguous(memory_format=self.fmt)
        return out

    def from_torch(self, t):
        if self.channels_last:
            assert t.is_contiguous(memory_format=self.fmt), "torch changed the memory format"
            t = t.permute(0, *range(2, t.dim()), 1)  # NC... -> N...C: the memory order
        return t

    def state(self):
        if self.c["api"] == "module":
            m = self.mod
            return m.weight.detach().clone(), m.bias.detach().clone(), m.running_mean.clone(), m.running_var.clone()
        return self.w.clone(), self.b.clone(), self.rm.clone(), self.rv.clone()

    def train(self, x):
        c = self.c
        xt = self.to_torch(x)
        g, b, rm0, rv0 = self.state()
        with torch.no_grad():
            if c["api"] == "module":
                y = self.mod(xt)
                rm, rv = self.mod.running_mean, self.mod.running_var
            else:
                y = F.batch_norm(xt, self.rm, self.rv, self.w, self.b, training=True, momentum=c["momentum"], eps=c["eps"])
                rm, rv = self.rm, self.rv
            # the kernel's own batch mean; the same call must give the same y and running update
            y2, save_mean, _ = torch.native_batch_norm(xt, g, b, rm0, rv0, True, c["momentum"], c["eps"])
            assert torch.equal(y, y2) and torch.equal(rm, rm0) and torch.equal(rv, rv0), "native_batch_norm disagrees with the API"
            wide = torch.float32 if c["dtype"] in HALF else DT[c["dtype"]]
            var, _ = torch.var_mean(xt.to(wide), dim=self.dims, correction=0)
        pdt = DT[c["param_dtype"]]
        return dict(y=self.from_torch(y), mean=save_mean.to(pdt), variance=var.to(pdt), runningMean=rm.clone(), runningVar=rv.clone())

    def infer(self, x):
        c = self.c
        xt = self.to_torch(x)
        with torch.no_grad():
            if c["api"] == "module":
                self.mod.eval()
                y = self.mod(xt)
                self.mod.train()
            else:
                y = F.batch_norm(xt, self.rm, self.rv, self.w, self.b, training=False, eps=c["eps"])
        return dict(y=self.from_torch(y))

    def backward(self, x, dy, training):
        c = self.c
        xt = self.to_torch(x).requires_grad_(True)
        dyt = self.to_torch(dy)
        if c["api"] == "module":
            twin = copy.deepcopy(self.mod)  # the running statistics of self.mod are left alone
            twin.train(training)
            y = twin(xt)
            w, b = twin.weight, twin.bias
        else:
            w = self.w.clone().requires_grad_(True)
            b = self.b.clone().requires_grad_(True)
            y = F.batch_norm(xt, self.rm.clone(), self.rv.clone(), w, b, training=training, momentum=c["momentum"], eps=c["eps"])
        dx, dg, db = torch.autograd.grad(y, [xt, w, b], grad_outputs=dyt)
        return dict(dx=self.from_torch(dx), dgamma=dg, dbeta=db)


def refusals(dtype):
    """What torch 2.13 CPU says to a half activation with each parameter dtype it refuses."""
    out = []
    for pd in ("float16", "bfloat16", "float32", "float64"):
        if pd in (dtype, "float32"):
            continue
        x = torch.ones(4, 2, dtype=DT[dtype])
        p = torch.ones(2, dtype=DT[pd])
        try:
            F.batch_norm(x, p.clone(), p.clone(), p, p, training=True)
            msg = None
        except RuntimeError as e:
            msg = str(e).splitlines()[0]
        if msg:
            out.append(f"{dtype} x with {pd} parameters: torch {torch.__version__} CPU F.batch_norm refuses: RuntimeError: {msg}")
    return out


def tags_of(c, m, n_train):
    shape, axis = c["shape"], c["axis"]
    return sorted(set(c["tags"]) | {
        f"rank{len(shape)}",
        "channels-last" if axis == len(shape) - 1 else "channels-first",
        f"momentum-{c['momentum']:g}", f"eps-{c['eps']:g}", f"api-{c['api']}", c["data"],
    } | ({"memory-format-channels-last"} if axis == len(shape) - 1 and len(shape) >= 4 else set())
      | ({"m1"} if m == 1 else set()) | ({"m2"} if m == 2 else set()) | ({"multi-step"} if n_train > 1 else set())
      | ({"mixed-precision"} if c["param_dtype"] != c["dtype"] else set()) | ({"half"} if c["dtype"] in HALF else set()))


def export_case(c, versions):
    rng = np.random.default_rng(c["seed"])
    shape, axis, dtype = c["shape"], c["axis"], c["dtype"]
    C = shape[axis]
    m = int(np.prod(shape)) // C
    runner = TorchRunner(c, *params(rng, C, c["param_dtype"]))
    base = dict(shape=shape, axis=axis)
    steps, omitted = [], []
    first_x = None
    n_train = 0
    for _ in range(c["steps"]):
        x = make_data(rng, c, shape, axis, dtype)
        first_x = x if first_x is None else first_x
        g, b, rm, rv = runner.state()
        req = dict(base, x=arr(x), gamma=arr(g), beta=arr(b), eps=c["eps"], momentum=c["momentum"], runningMean=arr(rm), runningVar=arr(rv))
        try:
            out = runner.train(x)
        except ValueError as e:  # m = 1: torch refuses training
            omitted.append(f"forwardTrain: torch refuses: ValueError: {e}")
            continue
        n_train += 1
        steps.append(dict(op="forwardTrain", request=req, result={k: arr(v) for k, v in out.items()}))
    if c["infer"]:
        x = make_data(rng, c, shape, axis, dtype)
        g, b, rm, rv = runner.state()
        req = dict(base, x=arr(x), gamma=arr(g), beta=arr(b), eps=c["eps"], runningMean=arr(rm), runningVar=arr(rv))
        steps.append(dict(op="forwardInfer", request=req, result={k: arr(v) for k, v in runner.infer(x).items()}))
    if c["backward"]:
        for training in (True, False):
            x = first_x if training else make_data(rng, c, shape, axis, dtype)
            dy = tt(rng.standard_normal(shape), dtype)
            g, b, rm, rv = runner.state()
            req = dict(base, x=arr(x), dy=arr(dy), gamma=arr(g), eps=c["eps"], training=training)
            if not training:
                req.update(runningMean=arr(rm), runningVar=arr(rv))
            try:
                out = runner.backward(x, dy, training)
            except ValueError as e:
                omitted.append(f"backward (training {str(training).lower()}): torch refuses: ValueError: {e}")
                continue
            steps.append(dict(op="backward", request=req, result={k: arr(v) for k, v in out.items()}))
    if dtype in HALF:
        omitted += refusals(dtype)
    doc = {
        "format": FORMAT,
        "name": f"torch-{c['name']}",
        "description": c["description"],
        "generator": {
            "name": "scripts/export_torch_fixtures.py",
            "language": "python",
            "runtime": f"python {platform.python_version()}",
            "packages": versions,
            "settings": {"device": "CPU", "intraOpThreads": 1, "interOpThreads": 1, "deterministicAlgorithms": True,
                         "memoryFormat": "channels_last" if runner.channels_last else "contiguous"},
        },
        "api": runner.api,
        "profile": "pytorch",
        "dtype": dtype,
        **({"paramDtype": c["param_dtype"]} if c["param_dtype"] != dtype else {}),
        "shape": shape,
        "axis": axis,
        "layout": LAYOUTS[(len(shape), axis)],
        "m": m,
        "seed": c["seed"],
        "eps": c["eps"],
        "momentum": c["momentum"],
        "momentumConvention": "update fraction (torch): running = (1 - momentum) * running + momentum * batch; the running variance takes the unbiased batch variance (x m/(m-1))",
        "data": {"kind": c["data"], **({"offsetToSpread": c["offset_ratio"]} if c["offset_ratio"] else {})},
        "tags": tags_of(c, m, n_train),
        **({"knownIssues": c["known_issues"]} if c["known_issues"] else {}),
        **({"omitted": omitted} if omitted else {}),
        "steps": steps,
    }
    return doc


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fixtures" / "pytorch"
    out.mkdir(parents=True, exist_ok=True)
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    cases = declare_cases()
    for old in out.glob("torch-*.json"):
        old.unlink()
    for c in cases:
        doc = export_case(c, versions)
        (out / f"{doc['name']}.json").write_text(dump(doc) + "\n")
        if doc.get("omitted"):
            print(f"{doc['name']}: omitted {'; '.join(doc['omitted'])}")
    print(f"wrote {len(cases)} PyTorch fixtures to {out}")
    if len(sys.argv) <= 1:
        write_manifest(ROOT / "fixtures")
        print("rewrote fixtures/manifest.json")


if __name__ == "__main__":
    main()
