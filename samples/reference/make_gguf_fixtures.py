"""GGUF reference fixtures, written and read back by gguf-py (PyPI gguf 0.19).

Run from the repository root:  /root/.cache/wilke/venv/bin/python samples/reference/make_gguf_fixtures.py

Outputs (deterministic, fixed seed):
  Tests/FormatsTests/Fixtures/gguf/every_type.gguf   every metadata value type (incl. string, nested arrays),
                                                     tensors F32 / F16 / Q8_0 / Q4_0, default alignment 32
  Tests/FormatsTests/Fixtures/gguf/aligned64.gguf    general.alignment = 64, v3, two tensors
  Tests/FormatsTests/Fixtures/gguf/<name>.json       what gguf-py wrote / reads back: keys, types, values,
                                                     tensor names, ne, types, offsets, bytes (hex)
  samples/reference/smollm2_tensors.json             gguf-py's view of the real SmolLM2 Q4_1 GGUF (if present)

JSON value encoding (recursive): {"type": "UINT8"..."FLOAT64", "value": ...} where integers are decimal
strings (u64 does not survive JSON doubles), floats are the hex bit pattern of the stored f32 / f64,
bools are true/false, strings are text; arrays are {"type": "ARRAY", "elem": T, "items": [values]}.
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as VT, GGMLQuantizationType as QT

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/FormatsTests/Fixtures/gguf")
MODEL = os.environ.get("WILKE_MODEL") or os.path.join(
    os.environ.get("WILKE_CACHE", os.path.expanduser("~/.cache/wilke")), "models/SmolLM2-135M-Instruct.Q4_1.gguf")


def enc(vtype, val, sub=None):
    """JSON form of a value as written with gguf-py type `vtype` (and array element type `sub`)."""
    if vtype == VT.ARRAY:
        elem = sub if sub is not None else VT.get_type(val[0])
        return {"type": "ARRAY", "elem": elem.name, "items": [enc(elem, v) for v in val]}
    if vtype == VT.STRING:
        return {"type": "STRING", "value": val}
    if vtype == VT.BOOL:
        return {"type": "BOOL", "value": bool(val)}
    if vtype == VT.FLOAT32:
        return {"type": "FLOAT32", "value": "0x%08x" % struct.unpack("<I", struct.pack("<f", val))[0]}
    if vtype == VT.FLOAT64:
        return {"type": "FLOAT64", "value": "0x%016x" % struct.unpack("<Q", struct.pack("<d", val))[0]}
    return {"type": vtype.name, "value": str(int(val))}


def write_fixture(name, kvs, tensors, alignment=None):
    """kvs: [(key, vtype, value, sub_type)]; tensors: [(name, ndarray, raw_dtype or None)]."""
    path = os.path.join(OUT, name + ".gguf")
    w = gguf.GGUFWriter(path, "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, vtype, val, sub in kvs:
        w.add_key_value(key, val, vtype, sub_type=sub)
    for tname, arr, raw in tensors:
        w.add_tensor(tname, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # Expected values: what we asked gguf-py to write, in file order (general.architecture first, then
    # general.alignment when set, then ours), cross-checked against gguf-py's reader.
    expected_kv = [{"key": "general.architecture", **enc(VT.STRING, "llama")}]
    if alignment is not None:
        expected_kv.append({"key": "general.alignment", **enc(VT.UINT32, alignment)})
    expected_kv += [{"key": k, **enc(t, v, s)} for k, t, v, s in kvs]

    r = gguf.GGUFReader(path)
    keys = [f.name for f in r.fields.values() if not f.name.startswith("GGUF.")]
    assert keys == [e["key"] for e in expected_kv], keys
    for e in expected_kv:
        f = r.fields[e["key"]]
        assert f.types[0].name == e["type"], (e["key"], f.types)
    out_tensors = []
    for t in r.tensors:
        rel = int(t.field.parts[-1][0])
        out_tensors.append({
            "name": t.name, "type": t.tensor_type.name, "ne": [int(d) for d in t.shape],
            "offset": rel, "data_offset": int(t.data_offset), "n_bytes": int(t.n_bytes),
            "hex": bytes(t.data.tobytes()).hex(),
        })
    with open(path, "rb") as fh:
        blob = fh.read()
    doc = {"file": name + ".gguf", "version": 3, "size": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
           "alignment": alignment or 32, "kv": expected_kv, "tensors": out_tensors}
    with open(os.path.join(OUT, name + ".json"), "w") as fh:
        json.dump(doc, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    print(f"{path}: {len(blob)} bytes, {len(keys)} keys, {len(out_tensors)} tensors")


def fixtures():
    rng = np.random.default_rng(20240326)
    kvs = [
        ("general.name", VT.STRING, "smöl fixture ✓", None),
        ("test.uint8", VT.UINT8, 200, None),
        ("test.int8", VT.INT8, -100, None),
        ("test.uint16", VT.UINT16, 60000, None),
        ("test.int16", VT.INT16, -30000, None),
        ("test.uint32", VT.UINT32, 4000000000, None),
        ("test.int32", VT.INT32, -2000000000, None),
        ("test.float32", VT.FLOAT32, 0.1, None),
        ("test.bool_true", VT.BOOL, True, None),
        ("test.bool_false", VT.BOOL, False, None),
        ("test.empty_string", VT.STRING, "", None),
        ("test.uint64", VT.UINT64, 2**63 + 5, None),
        ("test.int64", VT.INT64, -(2**62) - 7, None),
        ("test.float64", VT.FLOAT64, -1.2345678901234567e-300, None),
        ("test.array.uint8", VT.ARRAY, [0, 1, 255], VT.UINT8),
        ("test.array.int16", VT.ARRAY, [-32768, 0, 32767], VT.INT16),
        ("test.array.float32", VT.ARRAY, [1.5, -0.25, 3.0e38], VT.FLOAT32),
        ("test.array.bool", VT.ARRAY, [True, False, True], VT.BOOL),
        ("test.array.uint64", VT.ARRAY, [2**64 - 1, 0], VT.UINT64),
        ("test.array.float64", VT.ARRAY, [2.0**-1074, 1e308], VT.FLOAT64),
        ("tokenizer.ggml.tokens", VT.ARRAY, ["<s>", "</s>", "", "héllo", "▁world"], VT.STRING),
        ("test.array.nested_int32", VT.ARRAY, [[1, 2, 3], [-4]], None),
        ("test.array.nested_strings", VT.ARRAY, [["a", "bc"], ["d"], ["é"]], None),
        ("test.array.nested3", VT.ARRAY, [[[1.0, 2.0], [3.0]], [[4.0]]], None),
    ]
    q8 = rng.standard_normal((4, 64)).astype(np.float32)
    q4 = rng.standard_normal((2, 32)).astype(np.float32)
    tensors = [
        ("token_embd.weight", rng.standard_normal((3, 8)).astype(np.float32), None),
        ("blk.0.attn_norm.weight", rng.standard_normal(5).astype(np.float32), None),
        ("blk.0.attn_q.weight", rng.standard_normal((2, 16)).astype(np.float16), None),
        ("blk.0.ffn_down.weight", gguf.quants.quantize(q8, QT.Q8_0), QT.Q8_0),
        ("blk.0.ffn_up.weight", gguf.quants.quantize(q4, QT.Q4_0), QT.Q4_0),
        ("blk.0.four_d", rng.standard_normal((2, 1, 3, 4)).astype(np.float16), None),
    ]
    write_fixture("every_type", kvs, tensors)

    tensors64 = [
        ("a", rng.standard_normal(3).astype(np.float32), None),
        ("b", gguf.quants.quantize(rng.standard_normal((1, 32)).astype(np.float32), QT.Q8_0), QT.Q8_0),
    ]
    write_fixture("aligned64", [("general.type", VT.STRING, "model", None)], tensors64, alignment=64)


def smollm2():
    if not os.path.exists(MODEL):
        print(f"{MODEL} missing: skipping smollm2_tensors.json", file=sys.stderr)
        return
    r = gguf.GGUFReader(MODEL)
    tensors = []
    for t in r.tensors:
        rel = int(t.field.parts[-1][0])
        tensors.append({"name": t.name, "type": t.tensor_type.name, "ne": [int(d) for d in t.shape],
                        "shape": [int(d) for d in reversed(t.shape.tolist())], "offset": rel,
                        "data_offset": int(t.data_offset), "n_bytes": int(t.n_bytes)})
    kv = []
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue
        entry = {"key": f.name, "type": f.types[0].name}
        if f.types[0] == VT.ARRAY:
            entry["elem"] = f.types[1].name if len(f.types) > 1 else None
            entry["count"] = len(f.data)
        kv.append(entry)
    doc = {"file": os.path.basename(MODEL), "size": os.path.getsize(MODEL),
           "version": int(r.fields["GGUF.version"].parts[-1][0]), "alignment": int(r.alignment),
           "data_offset": int(r.data_offset), "kv": kv, "tensors": tensors}
    path = os.path.join(ROOT, "samples/reference/smollm2_tensors.json")
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    print(f"{path}: {len(tensors)} tensors, {len(kv)} keys")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    fixtures()
    smollm2()
