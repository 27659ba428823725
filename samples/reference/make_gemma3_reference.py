"""Reference next-token predictions of the real Gemma 3 270M (Q4_K_M GGUF), computed by transformers
loading the GGUF itself (it dequantizes to f32 and subtracts the 1 llama.cpp's converter adds to every
Gemma norm weight). Writes Tests/WilKETests/Fixtures/gemma3_top5.json, which the Swift tests compare
against (greedy token and top-5 logits). The prompts are SmolLM2's (make_smollm2_reference.py) plus one
of more than 512 tokens, so the sliding-window layers see a window narrower than the sequence.

Run: $(scripts/python-env.sh) samples/reference/make_gemma3_reference.py [MODEL.gguf]
"""
import json, os, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_smollm2_reference import PROMPTS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LONG = " ".join(f"Item {i} of the list is the number {i * 7 % 100}." for i in range(60)) + " The last item is"


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/wilke/models/gemma-3-270m-q4_k_m.gguf")
    d, f = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    cfg = model.config
    out = {"model": f, "transformers": __import__("transformers").__version__, "torch": torch.__version__,
           "config": {"sliding_window": cfg.sliding_window, "layer_types": cfg.layer_types,
                      "rope_parameters": cfg.rope_parameters, "query_pre_attn_scalar": cfg.query_pre_attn_scalar,
                      "final_logit_softcapping": cfg.final_logit_softcapping,
                      "attn_logit_softcapping": cfg.attn_logit_softcapping, "hidden_activation": cfg.hidden_activation},
           "prompts": []}
    print(json.dumps(out["config"]))
    with torch.no_grad():
        for p in PROMPTS + [LONG]:
            ids = tok(p, add_special_tokens=True)["input_ids"]
            logits = model(torch.tensor([ids])).logits[0, -1].double()
            top = torch.topk(logits, 5)
            out["prompts"].append({
                "prompt": p, "ids": ids,
                "top5_ids": top.indices.tolist(),
                "top5_logits": [float(x) for x in top.values],
                "top5_pieces": [tok.decode([i]) for i in top.indices.tolist()],
            })
    dst = os.path.join(ROOT, "Tests", "WilKETests", "Fixtures", "gemma3_top5.json")
    with open(dst, "w") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    for r in out["prompts"]:
        print(f'{r["prompt"][-50:]!r:55} {len(r["ids"]):4} -> {r["top5_pieces"][0]!r} {r["top5_logits"][0]:.4f}')


if __name__ == "__main__":
    main()
