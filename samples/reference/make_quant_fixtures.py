#!/usr/bin/env python3
"""Reference fixtures for TensorCodec (Sources/Formats/Quant): gguf-py's dequantize / quantize outputs.

Run from the repository root:  /root/.cache/wilke/venv/bin/python samples/reference/make_quant_fixtures.py
Writes Tests/FormatsTests/Fixtures/quant/{index.json, *.bin}. Deterministic (fixed seed).

Every .bin is raw little-endian bytes. index.json lists cases:
  {"kind": "dequantize", "dtype": "Q4_0", "elements": N, "input": "q4_0.in.bin", "output": "q4_0.out.bin"}
      input = the encoded tensor, output = gguf-py's (or numpy's, for plain types) f32 values.
  {"kind": "quantize", "dtype": "Q8_0", "elements": N, "input": "quantize.in.bin", "output": "q8_0.q.bin"}
      input = f32 values, output = gguf-py's quantized bytes.
"""
import json
import os

import numpy as np
from gguf import quants
from gguf.constants import GGMLQuantizationType as T, GGML_QUANT_SIZES

OUT = os.path.join("Tests", "FormatsTests", "Fixtures", "quant")
rng = np.random.default_rng(20240611)
# Overflow to inf (a 1e6-scale block, F64 > FLT_MAX) is an intended edge case, not a problem.
np.seterr(over="ignore", invalid="ignore")
cases = []


def write(name: str, arr: np.ndarray) -> str:
    arr = np.ascontiguousarray(arr)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(arr.tobytes())
    return name


def fp16_bytes(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).view(np.uint8).reshape(-1, 2)


# Byte offsets of the fp16 scale fields of each block (FORMATS.md §2.6): random bytes elsewhere are
# all valid, but random fp16 scales could be inf/NaN, which says nothing about the kernels.
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def random_blocks(qtype: T, n_blocks: int) -> np.ndarray:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in SCALE_FIELDS[qtype]:
        vals = rng.normal(0, 0.05, size=n_blocks).astype(np.float32)
        # a few special but finite scales: zero, negative zero, subnormal, largish
        vals[0] = 0.0
        vals[1] = -0.0
        vals[2] = 3e-6
        vals[3] = 100.0
        blocks[:, off:off + 2] = fp16_bytes(vals)
    return blocks


# ---- dequantize: quantized types -------------------------------------------------------------------
for qtype, n_blocks in [(T.Q4_0, 256), (T.Q4_1, 256), (T.Q5_0, 256), (T.Q5_1, 256), (T.Q8_0, 256),
                        (T.Q2_K, 48), (T.Q3_K, 48), (T.Q4_K, 48), (T.Q5_K, 48), (T.Q6_K, 48)]:
    blocks = random_blocks(qtype, n_blocks)
    out = quants.dequantize(blocks, qtype).astype(np.float32).reshape(-1)
    name = qtype.name.lower()
    cases.append({"kind": "dequantize", "dtype": qtype.name, "elements": int(out.size),
                  "input": write(f"{name}.in.bin", blocks), "output": write(f"{name}.out.bin", out)})

# ---- dequantize: plain types (numpy's astype(float32), which gguf-py uses for F16) ------------------
f16_special = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00,
                        0x3C00, 0x3555], dtype=np.uint16)
f16_bits = np.concatenate([f16_special, rng.integers(0, 0x7C00, size=1012, dtype=np.uint16)
                           | (rng.integers(0, 2, size=1012, dtype=np.uint16) << 15)])
f16_out = quants.dequantize(f16_bits.view(np.uint8), T.F16).astype(np.float32)
cases.append({"kind": "dequantize", "dtype": "F16", "elements": int(f16_bits.size),
              "input": write("f16.in.bin", f16_bits), "output": write("f16.out.bin", f16_out)})

bf16_bits = rng.integers(0, 0x10000, size=1024, dtype=np.uint32).astype(np.uint16)
bf16_bits[:6] = [0x0000, 0x8000, 0x0001, 0x7F80, 0xFF80, 0x3F80]
bf16_out = quants.dequantize(bf16_bits.view(np.uint8), T.BF16).astype(np.float32)
cases.append({"kind": "dequantize", "dtype": "BF16", "elements": int(bf16_bits.size),
              "input": write("bf16.in.bin", bf16_bits), "output": write("bf16.out.bin", bf16_out)})

f64 = np.concatenate([
    np.array([0.0, -0.0, 1.0 + 2.0**-24, 1.0 + 3 * 2.0**-24, 1.0 + 2.0**-24 + 2.0**-50, 3.4028235677973366e38,
              3.4028235677973366e38 * (1 + 2.0**-25), 1e39, -1e39, 1e-40, 1e-46, 7e-46, np.inf, -np.inf]),
    rng.normal(0, 1, size=498) * np.exp(rng.uniform(-30, 30, size=498))])
cases.append({"kind": "dequantize", "dtype": "F64", "elements": int(f64.size),
              "input": write("f64.in.bin", f64.astype("<f8")),
              "output": write("f64.out.bin", f64.astype(np.float32))})

for dt, np_dt in [("I8", np.int8), ("I16", np.int16), ("I32", np.int32)]:
    info = np.iinfo(np_dt)
    vals = rng.integers(info.min, info.max, size=256, endpoint=True, dtype=np.int64).astype(np_dt)
    vals[:4] = [info.min, info.max, 0, -1]
    if np_dt == np.int32:
        vals[4:8] = [16777217, 16777219, -16777219, 2147483583]  # f32 rounding ties
    cases.append({"kind": "dequantize", "dtype": dt, "elements": int(vals.size),
                  "input": write(f"{dt.lower()}.in.bin", vals), "output": write(f"{dt.lower()}.out.bin",
                                                                                  vals.astype(np.float32))})

# ---- quantize: Q4_0 / Q4_1 / Q8_0 from one f32 input ------------------------------------------------
blocks = []
for i in range(200):
    blocks.append(rng.normal(0, np.exp(rng.uniform(-8, 3)), size=32))
z = np.zeros(32); blocks.append(z)                                   # all-zero block
blocks.append(np.full(32, -0.0))                                   # all negative zero
mixz = np.zeros(32); mixz[::3] = -0.0; blocks.append(mixz)           # +0 / -0 mixed
huge = rng.normal(0, 0.01, size=32); huge[7] = 3.0e4; blocks.append(huge)   # one huge value
huge2 = rng.normal(0, 0.01, size=32); huge2[30] = -6.0e4; blocks.append(huge2)  # huge negative (d overflows fp16)
tiny = rng.normal(0, 1e-6, size=32); blocks.append(tiny)             # scales in the fp16 subnormal range
negmax = rng.uniform(-1, 0.5, size=32); negmax[11] = -1.5; blocks.append(negmax)   # negative max
tie = rng.uniform(-1, 1, size=32); tie[3] = 2.0; tie[9] = -2.0; blocks.append(tie)  # |max| tie, + first
tie2 = rng.uniform(-1, 1, size=32); tie2[3] = -2.0; tie2[9] = 2.0; blocks.append(tie2)  # |max| tie, - first
halves = np.arange(-16, 16) + 0.5; halves[0] = -127.0; blocks.append(halves)  # Q8_0 d = 1: exact .5 ties
q4ties = (np.arange(32) % 16 - 8) + 0.5; q4ties[0] = -8.0; blocks.append(q4ties)  # Q4_0 d = 1: .5 steps
const = np.full(32, 0.75); blocks.append(const)                      # max == min (Q4_1 d = 0)
negconst = np.full(32, -3.25); blocks.append(negconst)
big = rng.normal(0, 1, size=32) * 1e6; blocks.append(big)
grid = rng.integers(-127, 128, size=32) * 0.01; blocks.append(grid)
for i in range(6):
    # ±0 ties at the minimum (with positives) and at the maximum (with negatives): decide m's sign
    zmix = np.where(rng.integers(0, 2, size=32) == 1, -0.0, 0.0)
    sign = 1.0 if i % 2 == 0 else -1.0
    zmix[rng.integers(0, 32, size=8)] = sign * rng.uniform(0.1, 1, size=8)
    blocks.append(zmix)
for i in range(40):
    # values already on a grid of their own quantized levels, then perturbed by tiny amounts
    d = rng.uniform(0.001, 1)
    blocks.append(rng.integers(-8, 8, size=32) * d + rng.normal(0, d * 1e-7, size=32))
qin = np.array(blocks, dtype=np.float32).reshape(-1)
write("quantize.in.bin", qin)
for qtype in [T.Q4_0, T.Q4_1, T.Q8_0]:
    q = quants.quantize(qin.reshape(-1, 32), qtype)
    cases.append({"kind": "quantize", "dtype": qtype.name, "elements": int(qin.size),
                  "input": "quantize.in.bin", "output": write(f"{qtype.name.lower()}.q.bin", q)})

# ---- quantize: F16 (numpy astype, as gguf-py) and BF16 (gguf-py's own rounding) ---------------------
def f32(bits):
    return np.array(bits, dtype=np.uint32).view(np.float32)

specials = np.concatenate([
    np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 65504.0, 65519.99, 65520.0, -65520.0, 1e10,
              2.0**-24, 2.0**-25, 2.0**-25 * 1.0000001, 3 * 2.0**-25, 2.0**-26, 2.0**-14, 2.0**-14 - 2.0**-25,
              1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 1.0 + 2.0**-11 + 2.0**-20, -(1.0 + 2.0**-11), 1e-30],
             dtype=np.float32),
    # bf16 ties (odd and even lower halves), max-finite rounding to inf, subnormals, NaN payloads
    f32([0x3F808000, 0x3F818000, 0x3F808001, 0x7F7FFFFF, 0x7F7F8000, 0xFF7F8000, 0x00008000, 0x00018000,
         0x00000001, 0x807FFFFF, 0x7FC00000, 0xFFC00001, 0x7F800001, 0x7FBF0000, 0x7F810000]),
])
fin = np.concatenate([specials, (rng.normal(0, 1, size=1024) * np.exp(rng.uniform(-25, 12, size=1024)))
                      .astype(np.float32)])
write("round.in.bin", fin)
with np.errstate(over="ignore", invalid="ignore"):
    f16 = fin.astype(np.float16)
cases.append({"kind": "quantize", "dtype": "F16", "elements": int(fin.size), "input": "round.in.bin",
              "output": write("f16.q.bin", f16)})
cases.append({"kind": "quantize", "dtype": "BF16", "elements": int(fin.size), "input": "round.in.bin",
              "output": write("bf16.q.bin", quants.quantize(fin, T.BF16))})

with open(os.path.join(OUT, "index.json"), "w") as f:
    json.dump({"generator": "samples/reference/make_quant_fixtures.py", "cases": cases}, f, indent=1)
print(f"wrote {len(cases)} cases, {sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))} bytes")
