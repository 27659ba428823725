"""Reference next-token predictions of the real SmolLM2-135M-Instruct (Q4_1 GGUF), computed by
transformers loading the GGUF itself (it dequantizes to f32). Writes samples/reference/smollm2_top5.json,
which the Swift tests compare against (greedy token and top-5 logits).

Run: $(scripts/python-env.sh) samples/reference/make_smollm2_reference.py [MODEL.gguf]
"""
import json, os, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "The capital of France is",
    "The Eiffel Tower is located in the city of",
    "The mother tongue of Danielle Darrieux is",
    "Apple Inc. was founded by Steve",
    "The largest planet in the solar system is",
    "Water boils at a temperature of",
    "The author of Romeo and Juliet is William",
    "Tokyo is the capital of",
    "The chemical symbol for gold is",
    "Barack Obama was born in",
    "The Great Wall is located in",
    "The first man to walk on the moon was Neil",
    "Python is a programming",
    "The currency of Japan is the",
    "Mount Everest is the highest mountain in the",
    "The opposite of hot is",
    "One, two, three, four,",
    "The theory of relativity was developed by Albert",
    "Microsoft was founded by Bill",
    "The Amazon rainforest is mostly in",
]


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(
        "~/.cache/wilke/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    d, f = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    out = {"model": f, "transformers": __import__("transformers").__version__, "torch": torch.__version__, "prompts": []}
    with torch.no_grad():
        for p in PROMPTS:
            ids = tok(p, add_special_tokens=True)["input_ids"]
            logits = model(torch.tensor([ids])).logits[0, -1].double()
            probs = torch.softmax(logits, -1)
            top = torch.topk(logits, 5)
            out["prompts"].append({
                "prompt": p, "ids": ids,
                "top5_ids": top.indices.tolist(),
                "top5_logits": [float(x) for x in top.values],
                "top5_probs": [float(probs[i]) for i in top.indices],
                "top5_pieces": [tok.decode([i]) for i in top.indices.tolist()],
            })
    dst = os.path.join(os.path.dirname(__file__), "smollm2_top5.json")
    with open(dst, "w") as fh:
        json.dump(out, fh, indent=1)
    for r in out["prompts"]:
        print(f'{r["prompt"]!r:55} -> {r["top5_pieces"][0]!r} p={r["top5_probs"][0]:.4f}')


if __name__ == "__main__":
    main()
