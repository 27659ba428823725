"""GGUF forms of the tiny llama-family fixture models, written the way llama.cpp's convert_hf_to_gguf.py
writes them (gguf-py's writer, f32 tensors).

Run from the repository root, after make_model_fixtures.py:
    /root/.cache/wilke/venv/bin/python samples/reference/make_family_gguf_fixtures.py

Reads Tests/WilKETests/Fixtures/models/<arch>/{config.json, model.safetensors} and writes
Tests/WilKETests/Fixtures/models/<arch>.gguf. The converter's rules reproduced here, per architecture:

  qwen2, qwen3  general.architecture qwen2 / qwen3; Q/K rows as in HF (llama.cpp's rope type NEOX);
                Qwen3's q_norm / k_norm become attn_q_norm / attn_k_norm ([head_dim], stored as w);
                Qwen3 states head_dim as attention.key_length / value_length (4 x 12 != 32)
  mistral       general.architecture llama (the converter registers MistralForCausalLM with LlamaModel):
                Q/K rows permuted to interleaved pairs, and no sliding window (a llama GGUF has none,
                so positions >= the window compute full attention, as llama.cpp does)
  llama3        general.architecture llama, permuted Q/K, and rope_freqs.weight [head_dim / 2]: the
                per-frequency divisor of rope_type llama3 (1, factor, or the smoothed band between),
                computed by the converter's generate_extra_tensors; the metadata has no scaling keys
  phi3          general.architecture phi3; qkv_proj stored whole as attn_qkv [q | k | v rows],
                gate_up_proj whole as ffn_up [gate | up rows] (llama.cpp's fused SwiGLU reads the
                first half as the gate); rope NEOX, no permutation

No tokenizer: the tests feed token ids. Deterministic: the same input bytes give the same file.
"""
import json
import math
import os

import numpy as np
import gguf
from safetensors.numpy import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "Tests/WilKETests/Fixtures/models")
ARCHS = ["qwen2", "qwen3", "mistral", "llama3", "phi3"]
GGUF_ARCH = {"qwen2": "qwen2", "qwen3": "qwen3", "mistral": "llama", "llama3": "llama", "phi3": "phi3"}

BLOCK = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm", "self_attn.qkv_proj": "attn_qkv", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.gate_up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}
TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
       "lm_head.weight": "output.weight"}


def permute(w, heads):
    """llama.cpp's LlamaModel.permute: each head's rotate-half pairs (i, i + D/2) become rows (2i, 2i + 1)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def rope_freqs(cfg):
    """The converter's llama3 rope factors: frequency i is divided by the returned value."""
    rope = cfg["rope_parameters"]
    base, dim = rope["rope_theta"], cfg["head_dim"]
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    out = []
    for i in range(0, dim, 2):
        freq = 1.0 / (base ** (i / dim))
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def convert(arch):
    d = os.path.join(MODELS, arch)
    cfg = json.load(open(os.path.join(d, "config.json")))
    tensors = load_file(os.path.join(d, "model.safetensors"))
    name = GGUF_ARCH[arch]
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    path = os.path.join(MODELS, arch + ".gguf")
    w = gguf.GGUFWriter(path, name)
    w.add_name(f"tiny {arch}")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(cfg["vocab_size"])
    if head_dim != cfg["hidden_size"] // heads:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    out = {}
    for hf, t in tensors.items():
        if hf in TOP:
            out[TOP[hf]] = t
            continue
        parts = hf.split(".")  # model.layers.N.<module...>.weight|bias
        module, suffix = ".".join(parts[3:-1]), parts[-1]
        stem = BLOCK[module]
        if name == "llama" and stem == "attn_q":
            t = permute(t, heads)
        elif name == "llama" and stem == "attn_k":
            t = permute(t, kv)
        out[f"blk.{parts[2]}.{stem}.{suffix}"] = t
    if cfg["rope_parameters"].get("rope_type") == "llama3":
        out["rope_freqs.weight"] = rope_freqs(cfg)
    # llama.cpp writes the global tensors first, then the blocks in order.
    def order(n):
        if n.startswith("blk."):
            return (1, int(n.split(".")[1]), n)
        return (0, 0, n)
    for n in sorted(out, key=order):
        w.add_tensor(n, np.ascontiguousarray(out[n], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{path}: {os.path.getsize(path)} bytes, {len(out)} tensors")


if __name__ == "__main__":
    for a in ARCHS:
        convert(a)
