"""Reference token ids for the WilKE tokenizers, from Hugging Face `transformers` / `tokenizers`.

Run from the repository root:  /root/.cache/wilke/venv/bin/python samples/reference/make_tokenizer_fixtures.py

Reads samples/reference/tokenizer_corpus.txt (one case a line; `\\n`, `\\t`, `\\r`, `\\uXXXX` and `\\\\`
are escapes so a case can hold newlines and invisible characters) and writes, under
Tests/WilKETests/Fixtures/tokenizer/:

  smollm2_ids.json       ids from transformers' tokenizer built from the real SmolLM2 GGUF
                         (AutoTokenizer.from_pretrained(dir, gguf_file=...)), with and without special tokens
  gpt2_fixture.json      a small byte-level BPE (GPT-2 regex) trained here with `tokenizers`: its tokenizer.json
  gpt2_fixture_ids.json  ids from that tokenizer.json
  spm_fixture.json       a small SentencePiece-style vocabulary (tokens, scores, token types as a GGUF stores them)
  spm_fixture_ids.json   ids from transformers' LlamaTokenizer built from those arrays exactly as for a GGUF
  gemma3_ids.json        ids from transformers' tokenizer built from the real Gemma 3 270M GGUF (argument gemma3,
                         not in the default set)

Everything is deterministic: the training text is the corpus plus fixed stdlib docstrings.
"""

import json
import os
import re
import string
import sys
import tempfile

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "WilKETests", "Fixtures", "tokenizer")
MODEL = os.environ.get("WILKE_MODEL", os.path.expanduser("~/.cache/wilke/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
GEMMA3 = os.environ.get("WILKE_GEMMA3", os.path.expanduser("~/.cache/wilke/models/gemma-3-270m-q4_k_m.gguf"))


def unescape(line):
    out, i = [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            n = line[i + 1]
            if n == "n":
                out.append("\n"); i += 2; continue
            if n == "t":
                out.append("\t"); i += 2; continue
            if n == "r":
                out.append("\r"); i += 2; continue
            if n == "\\":
                out.append("\\"); i += 2; continue
            if n == "u":
                out.append(chr(int(line[i + 2:i + 6], 16))); i += 6; continue
        out.append(c)
        i += 1
    return "".join(out)


def load_corpus():
    with open(os.path.join(ROOT, "samples", "reference", "tokenizer_corpus.txt"), encoding="utf-8") as f:
        raw = f.read()
    lines = [unescape(l) for l in raw.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    # Plus the empty string and the whole corpus as one text (real newlines between cases).
    return lines + ["", "\n".join(lines)]


def dump(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def cases(tok, texts):
    out = []
    for t in texts:
        plain = tok.encode(t, add_special_tokens=False)
        special = tok.encode(t, add_special_tokens=True)
        out.append({"text": t, "ids": plain, "ids_special": special, "decoded": tok.decode(plain)})
    return out


def smollm2(texts):
    """Two references. transformers builds a GGUF byte-level tokenizer with the plain GPT-2 split and ignores
    `tokenizer.ggml.pre = smollm`; SmolLM2's own tokenizer.json (and llama.cpp's `smollm` pre-type) first
    isolates every digit (`Digits(individual_digits=True)`), which is how the model was trained. They differ
    only where a digit follows a space/newline run or is a non-ASCII number (`½`)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(os.path.dirname(MODEL), gguf_file=os.path.basename(MODEL))
    print("smollm2:", type(tok).__name__, "add_bos_token:", getattr(tok, "add_bos_token", None),
          "pre:", tok.backend_tokenizer.pre_tokenizer)
    meta = {"bos_id": tok.bos_token_id, "eos_id": tok.eos_token_id,
            "add_bos_token": bool(getattr(tok, "add_bos_token", False))}
    dump("smollm2_gguf_ids.json", dict(meta, source="transformers AutoTokenizer from " + os.path.basename(MODEL)
                                       + " (GPT-2 split, as transformers builds it from GGUF)",
                                       cases=cases(tok, texts)))
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    dump("smollm2_ids.json", dict(meta, source="transformers AutoTokenizer from " + os.path.basename(MODEL)
                                  + " with SmolLM2's tokenizer.json pre-tokenizer (Digits + ByteLevel)",
                                  cases=cases(tok, texts)))


# Scripts the generated Gemma 3 cases draw vocabulary pieces from (by the Unicode name of the first letter).
GEMMA3_SCRIPTS = ["LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "DEVANAGARI", "BENGALI", "TAMIL", "THAI",
                  "HANGUL", "CJK", "HIRAGANA", "KATAKANA", "ETHIOPIC", "GEORGIAN", "ARMENIAN", "GUJARATI",
                  "MYANMAR", "KHMER", "SINHALA", "TELUGU", "MALAYALAM", "KANNADA", "TIBETAN", "LAO"]


def gemma3_generated(tokens, count=2000, seed=14):
    """`count` short seeded texts built from Gemma's own vocabulary, so every script it knows gets merged:
    pieces of one or two scripts (▁ read back as a space), joined by the separators that stress the
    tokenizer (runs of spaces, tabs, newlines, punctuation), with emoji (ZWJ sequences, flags, skin tones),
    canonically equivalent spellings of one text (NFC and NFD, which a Unicode-aware string type treats as
    equal but the vocabulary does not), characters outside the vocabulary (byte fallback: private use,
    CJK extension planes, controls) and added tokens (<start_of_turn>, newline runs) in the middle of text."""
    import random
    import unicodedata

    rng = random.Random(seed)
    by_script = {s: [] for s in GEMMA3_SCRIPTS}
    for t in tokens:
        word = t.replace("\u2581", " ")
        letters = [c for c in word if c.isalpha()]
        if not letters or t.startswith("<") or len(word) > 12:
            continue
        name = unicodedata.name(letters[0], "")
        for s in GEMMA3_SCRIPTS:
            if name.startswith(s):
                by_script[s].append(word)
                break
    by_script = {s: sorted(v) for s, v in by_script.items() if v}
    scripts = sorted(by_script)
    # Pieces whose NFC and NFD spellings differ (ids for both exist in Gemma's vocabulary).
    equivalent = sorted(t for t in tokens if unicodedata.normalize("NFD", t) != t and not t.startswith("<"))
    emoji = ["\U0001F600", "\U0001F680", "\u2764\uFE0F", "\U0001F468\u200D\U0001F469\u200D\U0001F467",
             "\U0001F1EF\U0001F1F5", "\U0001F44B\U0001F3FD", "\U0001F9D1\u200D\U0001F4BB", "\u2615",
             "\U0001FAE0", "\U0001F3F3\uFE0F\u200D\U0001F308"]
    outside = ["\uE000", "\uF8FF", "\U000F0000", "\U00020BB7", "\U0002A6D6", "\U0003134A", "\u0007",
               "\u001B", "\U0001D11E", "\U00010348", "\u2E80", "\uFFFD", "\u0000"]
    separators = [" ", " ", " ", "", "  ", "   ", "    ", "\t", "\n", "\n\n", " \n ", ", ", ". ", "-", "\u3000",
                  "\u00a0", "\r\n", "        ", " \t "]
    added = ["<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<unused7>", "<mask>", "[multimodal]"]
    out = []
    for i in range(count):
        kind = i % 10
        if kind == 7 and equivalent:
            w = rng.choice(equivalent).replace("\u2581", " ")
            parts = [w, unicodedata.normalize("NFD", w), unicodedata.normalize("NFC", w)]
        else:
            chosen = rng.sample(scripts, 2) if kind in (1, 4) else [rng.choice(scripts)]
            parts = [rng.choice(by_script[rng.choice(chosen)]) for _ in range(rng.randint(1, 8))]
        if kind == 2:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(emoji))
        if kind == 3:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(outside))
        if kind == 5:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(added))
        if kind == 6:
            parts.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
        text = parts[0]
        for p in parts[1:]:
            text += (rng.choice(separators) if kind != 0 else "") + p
        if kind == 8:
            text = " " * rng.randint(1, 6) + text + " " * rng.randint(0, 3)
        out.append(text)
    return out


def gemma3(texts):
    """Gemma 3 270M's SentencePiece vocabulary (262,144 pieces with scores, byte fallback) as transformers
    builds it from the GGUF (`make fetch-model` puts the file in the cache), on the corpus plus 2,000
    generated texts (gemma3_generated)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(os.path.dirname(GEMMA3), gguf_file=os.path.basename(GEMMA3))
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    texts = texts + gemma3_generated([t for t, _ in vocab])
    print("gemma3:", type(tok).__name__, "add_bos_token:", getattr(tok, "add_bos_token", None))
    meta = {"bos_id": tok.bos_token_id, "eos_id": tok.eos_token_id, "vocab_size": len(tok),
            "add_bos_token": bool(getattr(tok, "add_bos_token", False))}
    dump("gemma3_ids.json", dict(meta, source="transformers AutoTokenizer from " + os.path.basename(GEMMA3),
                                 cases=cases(tok, texts)))


GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def pre_tokenizer_splits(texts):
    """The raw pieces each supported pre-tokenizer cuts every case into (oniguruma, via `tokenizers`)."""
    from tokenizers import Regex
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    splits = {
        "gpt2": pre_tokenizers.Split(Regex(GPT2_SPLIT), behavior="isolated"),
        "smollm": pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                           pre_tokenizers.Split(Regex(GPT2_SPLIT), behavior="isolated")]),
        "llama-bpe": pre_tokenizers.Split(Regex(GGUF_PRE_TOKENIZER_SPLITS["llama-bpe"]), behavior="isolated"),
        "qwen2": pre_tokenizers.Split(Regex(GGUF_PRE_TOKENIZER_SPLITS["qwen2"]), behavior="isolated"),
    }
    extra = ["x 12 3456 7", "I'M YOU'RE 'S 'LL 'Ve", "a\n\n b \n\tc", "  \r\n  x", "\t\tx", "!!\n\nx", "12345678"]
    out = {"texts": texts + extra}
    for name, pre in splits.items():
        out[name] = [[p for p, _ in pre.pre_tokenize_str(t)] for t in out["texts"]]
    dump("pretokenizer_splits.json", out)


def training_text(texts):
    docs = [re.__doc__, string.__doc__, json.__doc__, tempfile.__doc__, os.__doc__]
    return texts[:-2] + [d for d in docs if d]


def gpt2_fixture(texts):
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, min_frequency=2, show_progress=False,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(training_text(texts), trainer=trainer)
    data = tok.to_str()
    dump("gpt2_fixture.json", json.loads(data))
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(data))
    dump("gpt2_fixture_ids.json", {"source": "tokenizers ByteLevel BPE trained on the corpus",
                                   "vocab_size": tok.get_vocab_size(), "cases": cases(fast, texts)})


def spm_fixture(texts):
    """A SentencePiece-style vocabulary laid out like Llama-2's GGUF: <unk>, <s>, </s>, 256 byte tokens,
    then pieces by descending score. Pieces come from a `tokenizers` BPE over ▁-joined words; only
    characters of the Latin, Greek and Cyrillic text are kept, so the rest must fall back to bytes."""
    from transformers import LlamaTokenizer
    from transformers.integrations.gguf.gguf_tokenizer_mapping import add_gguf_special_tokens, sentencepiece_tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=900, min_frequency=2, show_progress=False)
    keep = [t for t in training_text(texts) if not re.search(r"[\u0590-\u1fff\u3000-\uffff]", t)]
    bpe.train_from_iterator(keep, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    merged = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    merged_tokens = ["".join(m.split(" ")) for m in merged]
    singles = [t for t, _ in vocab if len(t) == 1]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0, 0.0, 0.0] + [0.0] * 256
    seen = set(tokens)
    # Merged pieces score by merge order (first merge best); single characters score below all of them.
    for i, t in enumerate(merged_tokens + singles):
        if t in seen:
            continue
        seen.add(t)
        tokens.append(t); types.append(1); scores.append(float(-i))
    dump("spm_fixture.json", {"tokens": tokens, "scores": scores, "token_type": types,
                              "bos_id": 1, "eos_id": 2, "unk_id": 0})
    tokenizer_dict = {"tokenizer_type": "llama", "tokens": tokens, "scores": scores, "token_type": types}
    tok = add_gguf_special_tokens(sentencepiece_tokenizer(tokenizer_dict), tokenizer_dict)
    assert isinstance(tok, LlamaTokenizer)
    tok.add_bos_token = True  # what get_gguf_tokenizer sets for a llama-type GGUF without the flag
    tok.update_post_processor() if hasattr(tok, "update_post_processor") else None
    dump("spm_fixture_ids.json", {"source": "transformers LlamaTokenizer from GGUF-style arrays",
                                  "cases": cases(tok, texts)})


def main():
    os.makedirs(OUT, exist_ok=True)
    texts = load_corpus()
    which = sys.argv[1:] or ["splits", "smollm2", "gpt2", "spm"]
    if "splits" in which:
        pre_tokenizer_splits(texts)
    if "gpt2" in which:
        gpt2_fixture(texts)
    if "spm" in which:
        spm_fixture(texts)
    if "smollm2" in which:
        smollm2(texts)
    if "gemma3" in which:
        gemma3(texts)


if __name__ == "__main__":
    main()
