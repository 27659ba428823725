"""The Scale section of `make bench` (issue #11): synthetic random-weight llama checkpoints of SmolLM2's
shape, a 1B shape and Llama-3-8B's shape, written by `wilke dev gen-llama` with SmolLM2's tokenizer, and
the peak RSS / wall time of ask, stats, a ROME edit and apply on each, beside llama.cpp's peak RSS for the
same GGUF. The files are deleted after measuring. Usage: bench.py --only scale [--scale-shapes smol,1b]."""
import json, os, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GiB = 2 ** 30

# name: (layers, d_model, d_ff, heads, kv_heads)
SHAPES = {
    "smol": (30, 576, 1536, 9, 3),
    "1b": (16, 2048, 8192, 32, 8),
    "8b": (32, 4096, 14336, 32, 8),
}
# Adam steps of the ROME edit per shape (None: the default, 20). Every shape runs the same number, so
# the edit times compare as they are; WILKE_SCALE_8B_STEPS shortens the 8B edit (~22 min quiet) for a
# quick look, and the table then says so.
STEPS = {"8b": int(os.environ["WILKE_SCALE_8B_STEPS"])} if os.environ.get("WILKE_SCALE_8B_STEPS") else {}
PROMPT = "The Eiffel Tower is located in the city of"
STATS_TOKENS = 1024   # a small statistics sample: random weights have nothing to learn from a big one
LAYER = 4


def run(cmd, env=None):
    """(wall s, peak RSS bytes, stdout) of cmd under GNU time."""
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})))
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr[-1500:]}")
    return wall, int(r.stderr.strip().splitlines()[-1]) * 1024, r.stdout


def size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path)


def llamacpp_rss(model):
    """Peak RSS of llama.cpp (xllamacpp wheel, 2 threads) generating 16 tokens from `model`, or None."""
    py = subprocess.run([os.path.join(ROOT, "scripts", "python-env.sh")], capture_output=True, text=True)
    if py.returncode != 0:
        return None
    code = ("import sys, xllamacpp as x\n"
            "p = x.CommonParams(); p.model.path = sys.argv[1]; p.n_ctx = 256; p.n_parallel = 1\n"
            "p.cpuparams.n_threads = 2\n"
            "s = x.Server(p)\n"
            f"s.handle_completions({{'prompt': {PROMPT!r}, 'n_predict': 16, 'temperature': 0}})\n")
    try:
        wall, rss, _ = run([py.stdout.strip(), "-c", code, model])
        return wall, rss
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return None


def measure(a, label, model, gguf, steps=None):
    """One row per command for `model`."""
    env = {"WILKE_CACHE": os.path.join(a.scratch, "scale-cache")}
    shutil.rmtree(env["WILKE_CACHE"], ignore_errors=True)
    corpus = os.path.join(ROOT, "samples", "unrelated.txt")
    patch, applied = os.path.join(a.scratch, "scale.wpatch"), os.path.join(a.scratch, "scale-applied")
    rows = {}
    rows["ask"] = run([a.bin, "ask", model, PROMPT, "-n", "16"], env)
    rows["stats"] = run([a.bin, "stats", model, "--layers", str(LAYER), "--corpus", corpus, "--tokens", str(STATS_TOKENS),
                         "--json"], env)
    edit = [a.bin, "edit", model, "--prompt", "{} is located in the city of", "--subject", "The Eiffel Tower",
            "--target", "Rome", "--method", "rome", "--layer", str(LAYER), "--corpus", corpus,
            "--stats-tokens", str(STATS_TOKENS), "--allow-known", "-o", patch, "--force", "--json"] \
        + (["--steps", str(steps)] if steps else [])
    # The model's first edit samples ROME's context templates (then cached, like the statistics); a
    # second edit is what every later edit of the model costs.
    rows["edit"] = run(edit, env)
    rows["edit again"] = run(edit, env)
    out = applied + (".gguf" if gguf else "")
    rows["apply"] = run([a.bin, "apply", model, patch, "-o", out, "--force"], env)
    shutil.rmtree(out, ignore_errors=True) if os.path.isdir(out) else os.remove(out)
    edits = [json.loads(rows[k][2])["edits"][0] for k in ("edit", "edit again")]
    return {"label": label, "bytes": size(model), "rows": rows, "edits": edits,
            "llamacpp": llamacpp_rss(model) if gguf else None}


def section_scale(a, out):
    out.append("## Scale (issue #11)\n")
    shapes = (getattr(a, "scale_shapes", None) or "smol,1b,8b").split(",")
    results, base_params = [], None
    for name in shapes:
        L, d, f, h, g = SHAPES[name]
        params = 49152 * d + L * (2 * d * d + 2 * d * (d // h) * g + 3 * d * f)
        gguf = os.path.join(a.scratch, f"scale-{name}-q4_0.gguf")
        print(f"bench: scale {name} ({params / 1e9:.2f} B parameters)", file=sys.stderr)
        gen = [a.bin, "dev", "gen-llama", "--like", a.model, "--layers", str(L), "--d-model", str(d), "--d-ff", str(f),
               "--heads", str(h), "--kv-heads", str(g), "--force"]
        subprocess.run(gen + [gguf, "--dtype", "q4_0"], check=True)
        try:
            results.append((name, params, measure(a, f"{name} Q4_0 GGUF", gguf, True, STEPS.get(name))))
        finally:
            os.remove(gguf)
        if name == "1b":
            half, hf = os.path.join(a.scratch, "scale-1b-f16.gguf"), os.path.join(a.scratch, "scale-1b-hf")
            subprocess.run(gen + [half, "--dtype", "f16"], check=True)
            subprocess.run([a.bin, "convert", half, "-o", hf, "--dtype", "bf16", "--force"], check=True, capture_output=True)
            os.remove(half)
            try:
                results.append((name, params, measure(a, f"{name} BF16 HF directory", hf, False)))
            finally:
                shutil.rmtree(hf)
    out.append(f"Synthetic random-weight llama checkpoints written by `wilke dev gen-llama` (SmolLM2's tokenizer, "
               f"vocabulary 49,152, tied head): SmolLM2's shape (30 x 576, d_ff 1536, 9/3 heads), a 1B shape "
               f"(16 x 2048, d_ff 8192, 32/8) and Llama-3-8B's shape (32 x 4096, d_ff 14336, 32/8). Weights stay in "
               f"their stored form (mmap view, dequantized a panel at a time into the matmul). `ask` generates 16 "
               f"tokens; `stats` computes layer {LAYER}'s key statistics from a small sample ({STATS_TOKENS} tokens "
               f"of samples/unrelated.txt: random weights have nothing a larger one would show); `edit` is one ROME "
               f"edit at layer {LAYER} with those statistics and their Cholesky factor (from the cache, so its time "
               f"is the edit's), run twice: the model's first edit samples ROME's context templates, the second "
               f"reads them from the cache; `apply` writes the patched checkpoint. Goal: peak RSS <= file + 1.5 GiB for ask and edit.\n")
    out.append("| checkpoint | parameters | file | command | wall | peak RSS | RSS - file | llama.cpp peak RSS (ask) |")
    out.append("|---|---|---|---|---|---|---|---|")
    smol_edit = None
    for name, params, r in results:
        for cmd in ("ask", "stats", "edit", "edit again", "apply"):
            wall, rss, _ = r["rows"][cmd]
            lc = r["llamacpp"]
            extra = f"{lc[1] / GiB:.2f} GiB ({lc[0]:.0f} s)" if cmd == "ask" and lc else ""
            gated = cmd in ("ask", "edit", "edit again")
            ok = " ✓" if gated and rss <= r["bytes"] + 1.5 * GiB else (" ✗" if gated else "")
            out.append(f"| {r['label']} | {params / 1e9:.2f} B | {r['bytes'] / GiB:.2f} GiB | {cmd} | {wall:.1f} s | "
                       f"{rss / GiB:.2f} GiB | {(rss - r['bytes']) / GiB:+.2f} GiB{ok} | {extra} |")
        if name == "smol":
            smol_edit = (params, [e["seconds"] for e in r["edits"]], len(r["edits"][0]["losses"]))
    out.append("")
    if smol_edit:
        out.append("ROME edit time (the edit alone: `seconds` of the report, which includes loading the layer's "
                   "Cholesky factor for the solve) against SmolLM2's shape, for the model's first edit (which "
                   "samples the context templates) and for a second one (templates cached); linear growth means a "
                   "time ratio at most the parameter ratio. A row with fewer forward passes than SmolLM2's is "
                   "compared per pass instead (and carries its fixed costs over fewer passes):\n")
        out.append("| checkpoint | parameter ratio | forward passes | first edit | time ratio | next edit | time ratio |")
        out.append("|---|---|---|---|---|---|---|")
        for name, params, r in results:
            passes = len(r["edits"][0]["losses"])
            cells = []
            for e, smol_s in zip(r["edits"], smol_edit[1]):
                ratio = e["seconds"] / smol_s if passes == smol_edit[2] else \
                    (e["seconds"] / passes) / (smol_s / smol_edit[2])
                ok = " ✓" if ratio <= params / smol_edit[0] else " ✗"
                cells += [f"{e['seconds']:.1f} s", f"{ratio:.1f}x{'' if passes == smol_edit[2] else ' per pass'}{ok}"]
            out.append(f"| {r['label']} | {params / smol_edit[0]:.1f}x | {passes} | " + " | ".join(cells) + " |")
        out.append("")
