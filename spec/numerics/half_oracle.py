"""The independent path for spec/numerics/half.spec.ts: numpy float16 and ml_dtypes bfloat16.

Prints one JSON object: per format, every one of the 65,536 bit patterns decoded (float64, by
numpy / ml_dtypes), and rounding cases from float64 (every midpoint between neighbouring values,
the float64 values just beside each midpoint, every value itself, values around overflow,
seeded random values over the whole range) with the expected bit patterns.

Expected roundings are computed exactly: between neighbours lo < a < hi of one binade, a - lo
and hi - a are exact in float64 (Sterbenz), so nearest-with-ties-to-even is decided without
rounding. They are cross-checked against numpy's float16 cast (correct from float64) and against
ml_dtypes' bfloat16 cast from float32 (correct from float32). ml_dtypes' cast from float64 goes
through float32 (double rounding); how many cases that changes is reported, not trusted.
"""
import base64
import json

import ml_dtypes
import numpy as np


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def exact_round_bits(x, pos, pos_bits, threshold, inf_bits, nan_bits):
    """Nearest value of the sorted non-negative finite table `pos`, ties to the even pattern."""
    a = np.abs(x)
    sign = np.where(np.signbit(x), 0x8000, 0).astype(np.uint32)
    j = np.searchsorted(pos, a, side="left")
    jc = np.minimum(j, len(pos) - 1)
    out = np.zeros(len(x), dtype=np.uint32)
    exact = pos[jc] == a
    out[exact] = pos_bits[jc[exact]]
    between = ~exact & (j > 0) & (j < len(pos))
    lo = pos[j[between] - 1]
    hi = pos[j[between]]
    aa = a[between]
    dl = aa - lo  # exact (Sterbenz, or lo = 0)
    dh = hi - aa
    lo_bits = pos_bits[j[between] - 1]
    hi_bits = pos_bits[j[between]]
    pick_hi = (dh < dl) | ((dh == dl) & (hi_bits % 2 == 0))
    out[between] = np.where(pick_hi, hi_bits, lo_bits)
    above = ~exact & (j >= len(pos))
    out[above] = np.where(a[above] >= threshold, inf_bits, pos_bits[-1])
    out = out | sign
    out[np.isnan(x)] = nan_bits
    return out.astype(np.uint16)


def main():
    np.seterr(all="ignore")
    res = {"versions": {"numpy": np.__version__, "ml_dtypes": ml_dtypes.__version__}}
    pats = np.arange(65536, dtype=np.uint16)
    rng = np.random.default_rng(20261130)
    for name, dt, thr, inf_bits, nan_bits, lo_exp, hi_exp in [
        ("float16", np.float16, 65520.0, 0x7C00, 0x7E00, -30, 17),
        ("bfloat16", ml_dtypes.bfloat16, (2 - 2**-8) * 2.0**127, 0x7F80, 0x7FC0, -140, 128),
    ]:
        vals = pats.view(dt).astype(np.float32).astype(np.float64)
        fin = np.isfinite(vals)
        order = np.argsort(vals[fin & ~np.signbit(vals)], kind="stable")
        pos = vals[fin & ~np.signbit(vals)][order]
        pos_bits = pats[fin & ~np.signbit(vals)][order].astype(np.uint32)
        mid = pos[:-1] + (pos[1:] - pos[:-1]) / 2
        over = np.array([pos[-1], thr, np.nextafter(thr, 0), np.nextafter(thr, np.inf), 2 * thr, np.inf])
        rand = np.exp2(rng.uniform(lo_exp, hi_exp, 20000)) * rng.uniform(1, 2, 20000)
        cases = np.concatenate([mid, np.nextafter(mid, np.inf), np.nextafter(mid, 0), pos, over, rand,
                                [1 + 2**-8 + 2**-30, 1 + 2**-11 + 2**-40, np.nan]])
        cases = np.concatenate([cases, -cases])
        expected = exact_round_bits(cases, pos, pos_bits, thr, inf_bits, nan_bits)
        # cross-checks of the exact rounding against the libraries
        fl32 = cases.astype(np.float32).astype(np.float64) == cases
        with np.errstate(over="ignore", invalid="ignore"):
            if name == "float16":
                lib = cases.astype(np.float16).view(np.uint16)
                ok = np.isnan(cases) | (lib == expected)
                assert ok.all(), ("numpy float16 disagrees with the exact rounding", cases[~ok][:5])
            else:
                lib32 = cases[fl32].astype(np.float32).astype(dt).view(np.uint16)
                ok = np.isnan(cases[fl32]) | (lib32 == expected[fl32])
                assert ok.all(), ("ml_dtypes from float32 disagrees with the exact rounding", cases[fl32][~ok][:5])
                lib64 = cases.astype(dt).view(np.uint16)
                res["bfloat16_mldtypes_float64_double_rounded"] = int((~np.isnan(cases) & (lib64 != expected)).sum())
        res[name] = {"decode": b64(vals), "cases": b64(cases), "expected": b64(expected),
                     "float32Cases": int(fl32.sum())}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
