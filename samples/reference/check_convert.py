"""Interop check for `wilke convert`: the Hugging Face directory written from the GGUF must load in
transformers and give the same logits (and token ids) as transformers loading the GGUF itself.

Run: $(scripts/python-env.sh) samples/reference/check_convert.py MODEL.gguf CONVERTED_DIR
Exits non-zero when the max abs logit difference exceeds 1e-3 or any token id differs.
"""
import os, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = ["The capital of France is", "Hello, world! naïve café 🚀", "def f(x):\n    return x  # ok",
           "In 1969, 3 astronauts flew 384400 km."]


def main():
    gguf, converted = sys.argv[1], sys.argv[2]
    d, f = os.path.split(os.path.abspath(gguf))
    ref_tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    ref = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(converted)
    model = AutoModelForCausalLM.from_pretrained(converted, torch_dtype=torch.float32).eval()
    worst, ok = 0.0, True
    with torch.no_grad():
        for p in PROMPTS:
            a, b = ref_tok(p)["input_ids"], tok(p)["input_ids"]
            if a != b:
                # Expected only for digits: wilke splits every digit for SmolLM2 (as llama.cpp and the
                # model's own tokenizer do); transformers' GGUF loader does not.
                digits = any(ch.isdigit() for ch in p)
                print(f"token ids differ for {p!r} ({'digits: expected' if digits else 'UNEXPECTED'}): {a} vs {b}")
                ok = ok and digits
            x = torch.tensor([a])
            diff = (ref(x).logits - model(x).logits).abs().max().item()
            worst = max(worst, diff)
            print(f"{p!r:45} max |logit diff| = {diff:.3e}")
    print(f"max abs logit difference over all prompts: {worst:.3e}")
    sys.exit(0 if ok and worst <= 1e-3 else 1)


if __name__ == "__main__":
    main()
