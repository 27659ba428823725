"""Tiny random GPT-2 / GPT-J / Llama (GQA) / Qwen2 / Qwen3 / Mistral / Phi-3 / Llama 3 models and their
reference activations.

What each new family exercises: qwen3 a per-head RMSNorm of q and k before RoPE and head_dim 12 over
d = 32 (4 x 12 = 48); mistral a sliding window of 5 positions (rows of 7 and 11 tokens cross it); phi3
the fused qkv_proj and gate_up_proj; llama3 rope_type llama3 (head_dim 16: its 8 frequencies fall in
all three bands, kept, smoothed and divided by the factor).

Run from the repository root:  /root/.cache/wilke/venv/bin/python samples/reference/make_model_fixtures.py

Writes Tests/WilKETests/Fixtures/models/<arch>/{config.json, model.safetensors, reference.safetensors}.
The Swift forward pass (Sources/WilKE/Model) is checked against reference.safetensors:

  tokens.row{r}            int32 [T_r]          the input sequences (each run alone, no padding)
  logits.row{r}            f32   [T_r, V]       final logits at every position
  key.l{l}.row{r}          f32   [T_r, d_ff]    input of the MLP output projection (c_proj / fc_out / down_proj)
  mlp_out.l{l}.row{r}      f32   [T_r, d]       output of the MLP module
  resid.l{l}.row{r}        f32   [T_r, d]       residual stream after block l
  delta.vector             f32   [d]            a fixed intervention vector
  logits_mlp_delta.row0    f32   [T_0, V]       logits of row 0 with delta added to the MLP output of
                                                layer DELTA_LAYER at position DELTA_POS (ROME's hook)
  logits_resid_delta.row0  f32   [T_0, V]       logits of row 0 with delta added to the residual stream
                                                after block DELTA_LAYER at position DELTA_POS (MEMIT's hook)

Metadata "delta_layer_pos" = "DELTA_LAYER,DELTA_POS".
Weights are re-drawn with larger scales than HF's init (std 0.02 makes every logit ~0 and the test weak).
Eager attention, float32, CPU, fixed seeds: re-running reproduces the same bytes.
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import (GPT2Config, GPT2LMHeadModel, GPTJConfig, GPTJForCausalLM, LlamaConfig,
                          LlamaForCausalLM, MistralConfig, MistralForCausalLM, Phi3Config, Phi3ForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

OUT = "Tests/WilKETests/Fixtures/models"
VOCAB = 96
LENGTHS = [7, 4, 11]
DELTA_LAYER = 0
DELTA_POS = 2


def configs():
    common = dict(vocab_size=VOCAB, attn_implementation="eager")
    yield "gpt2", GPT2LMHeadModel, GPT2Config(n_layer=2, n_embd=32, n_head=4, n_inner=64, n_positions=32,
                                              layer_norm_epsilon=1e-5, activation_function="gelu_new",
                                              bos_token_id=0, eos_token_id=0, **common)
    yield "gptj", GPTJForCausalLM, GPTJConfig(n_layer=2, n_embd=32, n_head=4, n_inner=64, n_positions=32,
                                              rotary_dim=4, layer_norm_epsilon=1e-5,
                                              activation_function="gelu_new", tie_word_embeddings=False,
                                              bos_token_id=0, eos_token_id=0, **common)
    yield "llama", LlamaForCausalLM, LlamaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                                                 num_key_value_heads=2, intermediate_size=48,
                                                 max_position_embeddings=64, rms_norm_eps=1e-5,
                                                 rope_parameters={"rope_type": "default", "rope_theta": 500.0},
                                                 tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
                                                 **common)
    yield "qwen2", Qwen2ForCausalLM, Qwen2Config(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                                                 num_key_value_heads=2, intermediate_size=48,
                                                 max_position_embeddings=64, rms_norm_eps=1e-6,
                                                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                                                 tie_word_embeddings=True, use_sliding_window=False,
                                                 bos_token_id=0, eos_token_id=0, **common)
    # New families go last: the seeds follow the position, so the earlier fixtures keep their bytes.
    yield "qwen3", Qwen3ForCausalLM, Qwen3Config(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                                                 num_key_value_heads=2, head_dim=12, intermediate_size=48,
                                                 max_position_embeddings=64, rms_norm_eps=1e-6,
                                                 rope_parameters={"rope_type": "default", "rope_theta": 1000.0},
                                                 tie_word_embeddings=True, use_sliding_window=False,
                                                 bos_token_id=0, eos_token_id=0, **common)
    yield "mistral", MistralForCausalLM, MistralConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                                                       num_key_value_heads=2, intermediate_size=48,
                                                       max_position_embeddings=64, rms_norm_eps=1e-5,
                                                       sliding_window=5,
                                                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                                                       tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
                                                       **common)
    yield "phi3", Phi3ForCausalLM, Phi3Config(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                                              num_key_value_heads=2, intermediate_size=48,
                                              max_position_embeddings=64, original_max_position_embeddings=64,
                                              rms_norm_eps=1e-5, sliding_window=None,
                                              rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                                              tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
                                              pad_token_id=0, **common)
    yield "llama3", LlamaForCausalLM, LlamaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                                  num_key_value_heads=1, head_dim=16, intermediate_size=48,
                                                  max_position_embeddings=256, rms_norm_eps=1e-5,
                                                  rope_parameters={"rope_type": "llama3", "rope_theta": 500.0,
                                                                   "factor": 8.0, "low_freq_factor": 1.0,
                                                                   "high_freq_factor": 4.0,
                                                                   "original_max_position_embeddings": 64},
                                                  tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
                                                  **common)


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and ("ln" in name or "norm" in name) and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.25 * torch.randn(p.shape, generator=g))


def blocks_and_mlps(arch, model):
    if arch in ("gpt2", "gptj"):
        blocks = model.transformer.h
        out_proj = [b.mlp.c_proj if arch == "gpt2" else b.mlp.fc_out for b in blocks]
    else:
        blocks = model.model.layers
        out_proj = [b.mlp.down_proj for b in blocks]
    return blocks, [b.mlp for b in blocks], out_proj


def first(x):
    return x[0] if isinstance(x, tuple) else x


def run(arch, model, tokens, record=None, mlp_delta=None, resid_delta=None):
    """Logits for one unpadded sequence; optional hooks record activations or add a delta at a position."""
    blocks, mlps, out_proj = blocks_and_mlps(arch, model)
    handles = []
    for l in range(len(blocks)):
        if record is not None:
            handles.append(out_proj[l].register_forward_pre_hook(
                lambda m, inp, l=l: record.__setitem__(f"key.l{l}", inp[0][0].clone())))
        def mlp_hook(m, inp, out, l=l):
            if mlp_delta is not None and l == DELTA_LAYER:
                out = out.clone()
                out[0, DELTA_POS] += mlp_delta
            if record is not None:
                record[f"mlp_out.l{l}"] = out[0].clone()
            return out
        handles.append(mlps[l].register_forward_hook(mlp_hook))
        def block_hook(m, inp, out, l=l):
            h = first(out)
            if resid_delta is not None and l == DELTA_LAYER:
                h = h.clone()
                h[0, DELTA_POS] += resid_delta
                out = (h,) + tuple(out[1:]) if isinstance(out, tuple) else h
            if record is not None:
                record[f"resid.l{l}"] = h[0].clone()
            return out
        handles.append(blocks[l].register_forward_hook(block_hook))
    try:
        with torch.no_grad():
            logits = model(torch.tensor([tokens]), use_cache=False).logits[0]
    finally:
        for h in handles:
            h.remove()
    return logits


def main():
    torch.manual_seed(0)
    for i, (arch, cls, cfg) in enumerate(configs()):
        torch.manual_seed(100 + i)
        model = cls(cfg).to(torch.float32).eval()
        randomize(model, 1000 + i)
        d = os.path.join(OUT, arch)
        shutil.rmtree(d, ignore_errors=True)
        model.save_pretrained(d, safe_serialization=True)
        for extra in os.listdir(d):
            if extra not in ("config.json", "model.safetensors"):
                os.remove(os.path.join(d, extra))

        g = torch.Generator().manual_seed(7 + i)
        ref = {}
        rows = [torch.randint(0, VOCAB, (n,), generator=g).tolist() for n in LENGTHS]
        for r, toks in enumerate(rows):
            rec = {}
            ref[f"tokens.row{r}"] = torch.tensor(toks, dtype=torch.int32)
            ref[f"logits.row{r}"] = run(arch, model, toks, record=rec)
            for k, v in rec.items():
                ref[f"{k}.row{r}"] = v
        delta = torch.randn(cfg.hidden_size if hasattr(cfg, "hidden_size") else cfg.n_embd, generator=g)
        ref["delta.vector"] = delta
        ref["logits_mlp_delta.row0"] = run(arch, model, rows[0], mlp_delta=delta)
        ref["logits_resid_delta.row0"] = run(arch, model, rows[0], resid_delta=delta)
        save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(d, "reference.safetensors"),
                  # one metadata key: safetensors writes a multi-key map in random order
                  metadata={"delta_layer_pos": f"{DELTA_LAYER},{DELTA_POS}"})
        sizes = {f: os.path.getsize(os.path.join(d, f)) for f in sorted(os.listdir(d))}
        print(arch, sizes, "logit std", float(ref["logits.row0"].std()))


if __name__ == "__main__":
    main()
