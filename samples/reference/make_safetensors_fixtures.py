"""Reference safetensors files written by the official Python `safetensors` (Rust core) and
`huggingface_hub`, for the Formats tests: our reader must read them back exactly and our writer must
reproduce the single-file ones byte for byte.

Outputs (Tests/FormatsTests/Fixtures/safetensors/):
  mixed.safetensors    torch tensors of most dtypes, metadata {"format": "pt"}, a 0-size tensor, a scalar
  mixed.json           manifest: metadata, and per tensor name/dtype/shape/data_offsets/hex bytes
  plain.safetensors    numpy tensors, no metadata, names needing JSON escapes
  plain.json           manifest
  sharded/             huggingface_hub.save_torch_state_dict with a tiny max_shard_size:
                       model.safetensors.index.json + model-0000k-of-0000n.safetensors
  sharded.json         manifest of the union of the shards

The manifests come from the tensors we saved (not from parsing the files), so they are an
independent reference. Run from the repo root: python samples/reference/make_safetensors_fixtures.py
"""
import json
import os
import shutil

import numpy as np
import torch
from huggingface_hub import save_torch_state_dict
from safetensors.numpy import save_file as np_save_file
from safetensors.torch import save_file as torch_save_file

OUT = "Tests/FormatsTests/Fixtures/safetensors"
SAFETENSORS_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL", torch.uint16: "U16", torch.uint32: "U32", torch.uint64: "U64",
    torch.complex64: "C64", torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
    torch.float8_e4m3fnuz: "F8_E4M3FNUZ", torch.float8_e5m2fnuz: "F8_E5M2FNUZ",
    torch.float8_e8m0fnu: "F8_E8M0", torch.float4_e2m1fn_x2: "F4",
}


def raw_bytes(t: torch.Tensor) -> bytes:
    t = t.contiguous().reshape(-1)
    if t.numel() == 0:
        return b""
    return t.view(torch.uint8).numpy().tobytes()


def torch_entry(name, t):
    shape = list(t.shape)
    if t.dtype == torch.float4_e2m1fn_x2:
        shape[-1] *= 2  # safetensors stores F4 with the element count of the unpacked values
    return {"name": name, "dtype": SAFETENSORS_NAMES[t.dtype], "shape": shape, "hex": raw_bytes(t).hex()}


def write_manifest(path, metadata, entries):
    with open(path, "w") as f:
        json.dump({"metadata": metadata, "tensors": sorted(entries, key=lambda e: e["name"])}, f, indent=1)
        f.write("\n")


def mixed():
    g = torch.Generator().manual_seed(0)
    u8 = lambda n: torch.randint(0, 256, (n,), generator=g, dtype=torch.uint8)
    tensors = {
        "model.embed_tokens.weight": torch.randn(4, 3, generator=g),
        "model.norm.weight": torch.randn(3, generator=g).to(torch.float16),
        "lm_head.weight": torch.randn(2, 3, generator=g).to(torch.bfloat16),
        "f64": torch.randn(2, generator=g, dtype=torch.float64),
        "ids": torch.tensor([-1, 0, 2**40], dtype=torch.int64),
        "i32": torch.tensor([-7, 123456], dtype=torch.int32),
        "i16": torch.tensor([[-3], [300]], dtype=torch.int16),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": u8(5),
        "u16": torch.tensor([1, 65535], dtype=torch.uint16),
        "u32": torch.tensor([2**32 - 1], dtype=torch.uint32),
        "u64": torch.tensor([2**63 + 5], dtype=torch.uint64),
        "mask": torch.tensor([True, False, True]),
        "c64": torch.tensor([1 + 2j, -0.5j], dtype=torch.complex64),
        "f8_e4m3": u8(4).view(torch.float8_e4m3fn),
        "f8_e5m2": u8(4).view(torch.float8_e5m2),
        "f8_e4m3fnuz": u8(2).view(torch.float8_e4m3fnuz),
        "f8_e5m2fnuz": u8(2).view(torch.float8_e5m2fnuz),
        "f8_e8m0": u8(3).view(torch.float8_e8m0fnu),
        "f4": u8(3).view(torch.float4_e2m1fn_x2).reshape(1, 3),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(2.5),
    }
    torch_save_file(tensors, f"{OUT}/mixed.safetensors", metadata={"format": "pt"})
    write_manifest(f"{OUT}/mixed.json", {"format": "pt"}, [torch_entry(k, v) for k, v in tensors.items()])


def plain():
    rng = np.random.default_rng(1)
    tensors = {
        "b": rng.standard_normal((2, 2)).astype(np.float32),
        "a": rng.standard_normal(3).astype(np.float16),
        "caf\u00e9/\"quoted\"\n\u0001": np.arange(3, dtype=np.uint8),
        "zero": np.zeros((2, 0), dtype=np.int64),
        "s": np.array(7, dtype=np.int32),
    }
    np_save_file(tensors, f"{OUT}/plain.safetensors")
    names = {np.float32: "F32", np.float16: "F16", np.uint8: "U8", np.int64: "I64", np.int32: "I32"}
    entries = [{"name": k, "dtype": names[v.dtype.type], "shape": list(v.shape), "hex": v.tobytes().hex()}
               for k, v in tensors.items()]
    write_manifest(f"{OUT}/plain.json", {}, entries)


def sharded():
    g = torch.Generator().manual_seed(2)
    state = {}
    for layer in range(3):
        state[f"model.layers.{layer}.mlp.up_proj.weight"] = torch.randn(8, 4, generator=g)
        state[f"model.layers.{layer}.input_layernorm.weight"] = torch.randn(4, generator=g).to(torch.bfloat16)
    state["model.embed_tokens.weight"] = torch.randn(6, 4, generator=g)
    directory = f"{OUT}/sharded"
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    save_torch_state_dict(state, directory, max_shard_size=300, metadata={"format": "pt"})
    write_manifest(f"{OUT}/sharded.json", {"format": "pt"}, [torch_entry(k, v) for k, v in state.items()])


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    mixed()
    plain()
    sharded()
