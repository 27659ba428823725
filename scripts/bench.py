"""Benchmarks for `make bench`; writes docs/BENCHMARKS.md.

Each section measures one issue's goals on this machine (wall time with the fastest/median of several
runs, peak RSS from GNU time). Sections: formats (inspect, dequantization), patches (apply / revert / stack / diff). Others are added as the
engine, patches and edits land. Usage: bench.py --bin .build/release/wilke --model MODEL.gguf [--only a,b]
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, repeats=5):
    """(median wall seconds, max peak RSS in MiB) of running cmd `repeats` times."""
    walls, rss = [], []
    for _ in range(repeats):
        r = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{cmd} failed: {r.stderr[-500:]}")
        e, m = r.stderr.strip().splitlines()[-1].split()
        walls.append(float(e)); rss.append(int(m) / 1024)
    return statistics.median(walls), max(rss)


def wall_ms(cmd, repeats=7):
    """Median wall time in ms measured here (GNU time rounds to 10 ms)."""
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts)


def section_formats(a, out):
    out.append("## Formats (issue #2)\n")
    big = os.path.join(a.scratch, "big-4g.safetensors")
    if not os.path.exists(big):
        subprocess.run([a.bin, "dev", "gen-safetensors", big, "--tensors", "2000", "--bytes", str(4 << 30)], check=True)
    size = os.path.getsize(big)
    out.append("`wilke inspect` reads headers only. Goal: < 50 ms and < 30 MB peak RSS, independent of file size.\n")
    out.append("| file | size | tensors | wall (median of 7) | peak RSS |")
    out.append("|---|---|---|---|---|")
    for label, path, n in [("SmolLM2-135M Q4_1 GGUF", a.model, 272), ("synthetic safetensors", big, 2000)]:
        ms = wall_ms([a.bin, "inspect", path, "--json"])
        _, rss = timed([a.bin, "inspect", path, "--json"], 3)
        out.append(f"| {label} | {os.path.getsize(path) / 2**20:,.0f} MiB | {n} | {ms:.1f} ms | {rss:.1f} MiB |")
    out.append("")
    out.append("Dequantization to f32 (`wilke dev bench-codec`, 16 M elements, fastest of 5, 2 threads), against a")
    out.append("single-threaded memcpy of 64 MiB as the memory-bandwidth reference:\n")
    r = subprocess.run([a.bin, "dev", "bench-codec"], check=True, capture_output=True, text=True)
    rows = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    bw = next(x["gb_per_s"] for x in rows if x["kernel"] == "memcpy")
    out.append(f"memcpy: **{bw:.1f} GB/s**\n")
    out.append("| type | input GB/s | f32 output GB/s | output / memcpy |")
    out.append("|---|---|---|---|")
    for x in rows:
        if x["kernel"] == "dequantize":
            out.append(f"| {x['type']} | {x['gb_per_s_in']:.2f} | {x['gb_per_s_out']:.2f} | {x['gb_per_s_out'] / bw:.2f} |")
    out.append("")


def section_patches(a, out):
    """Issue #4: apply / revert vs cp, in-place apply, peak RSS, patch sizes, stack / diff / show."""
    out.append("## Patches (issue #4)\n")
    d = a.scratch
    big = os.path.join(d, "big-4g.safetensors")
    if not os.path.exists(big):
        subprocess.run([a.bin, "dev", "gen-safetensors", big, "--tensors", "2000", "--bytes", str(4 << 30)], check=True)

    def path(n):
        return os.path.join(d, n)

    def run(*args):
        subprocess.run([a.bin, *args], check=True, capture_output=True)

    run("dev", "gen-patch", a.model, "--tensor", "blk.15.ffn_down.weight", "-o", path("p.wpatch"), "--force")
    run("dev", "gen-patch", a.model, "--tensor", "blk.3.ffn_down.weight", "--seed", "2", "-o", path("p2.wpatch"), "--force")
    run("dev", "gen-patch", big, "--tensor", "model.layers.100.block.0.weight", "-o", path("big.wpatch"), "--force")
    out.append("Goals: apply / revert to a new file ≤ 1.5 × `cp` of the same file; peak RSS on the 4 GB file "
               "< 64 MB + 2 × the touched tensor's bytes (one 2 MiB F16 tensor here). Outputs are fsynced "
               "(`cp` is not); `cp + sync` is shown too. Median of 3 runs.\n")
    out.append("| file | size | cp | cp + sync | apply → new file | revert → new file | apply in place | peak RSS apply / revert |")
    out.append("|---|---|---|---|---|---|---|---|")
    for label, model, patch, ext in [("SmolLM2-135M Q4_1 GGUF", a.model, path("p.wpatch"), ".gguf"),
                                     ("synthetic safetensors", big, path("big.wpatch"), ".safetensors")]:
        edited, back, copy = path("edited" + ext), path("back" + ext), path("copy" + ext)
        cp, _ = timed(["cp", model, copy], 3)
        cps, _ = timed(["bash", "-c", f"cp '{model}' '{copy}' && sync '{copy}'"], 3)
        ap, rss_a = timed([a.bin, "apply", model, patch, "-o", edited, "--force"], 3)
        rv, rss_r = timed([a.bin, "revert", edited, patch, "-o", back, "--force"], 3)
        inplace = "n/a (Q4_1 → F32)"
        if ext == ".safetensors":
            walls = []
            for _ in range(3):
                w, _ = timed([a.bin, "apply", copy, patch, "--in-place"], 1)
                walls.append(w)
                timed([a.bin, "revert", copy, patch, "--in-place"], 1)
            inplace = f"{statistics.median(walls):.2f} s"
        out.append(f"| {label} | {os.path.getsize(model) / 2**20:,.0f} MiB | {cp:.2f} s | {cps:.2f} s | {ap:.2f} s ({ap / max(cp, 0.01):.2f} × cp) "
                   f"| {rv:.2f} s ({rv / max(cp, 0.01):.2f} × cp) | {inplace} | {rss_a:.0f} / {rss_r:.0f} MiB |")
        for f in (edited, back, copy):
            if os.path.exists(f):
                os.remove(f)
    out.append("")

    run("apply", a.model, path("p.wpatch"), "-o", path("e.gguf"), "--force")
    ex, _ = timed([a.bin, "diff", a.model, path("e.gguf"), "-o", path("q.wpatch"), "--force"], 1)
    st, _ = timed([a.bin, "stack", path("p.wpatch"), path("p2.wpatch"), "-o", path("s.wpatch"), "--force"], 3)
    cmp_, _ = timed([a.bin, "diff", a.model, path("e.gguf"), "--json"], 1)
    pd = wall_ms([a.bin, "diff", path("p.wpatch"), path("q.wpatch"), "--json"], 5)
    sh = wall_ms([a.bin, "show", path("p.wpatch"), "--json"], 5)
    tensor_bytes = 576 * 1536 // 32 * 24  # Q4_1: 24 bytes per 32 elements
    ps, qs = os.path.getsize(path("p.wpatch")), os.path.getsize(path("q.wpatch"))
    out.append("One SmolLM2-sized rank-one edit (blk.15.ffn_down, 576×1536 Q4_1 promoted to F32, ‖Δ‖ = 1% ‖W‖):\n")
    out.append("| patch | bytes | of the Q4_1 tensor |")
    out.append("|---|---|---|")
    out.append(f"| built (factors + revert residue) | {ps:,} | {100 * ps / tensor_bytes:.2f}% |")
    out.append(f"| extracted by `wilke diff -o` (factors + forward and revert residues) | {qs:,} | {100 * qs / tensor_bytes:.2f}% |")
    out.append("")
    out.append("| operation | wall |")
    out.append("|---|---|")
    out.append(f"| `stack` of two rank-one patches | {st * 1000:.0f} ms |")
    out.append(f"| `diff` patch vs patch (Gram matrices) | {pd:.0f} ms |")
    out.append(f"| `show --json` | {sh:.0f} ms |")
    out.append(f"| `diff` checkpoint vs checkpoint (SmolLM2, one changed tensor) | {cmp_:.2f} s |")
    out.append(f"| `diff -o` extraction (SmolLM2, one changed tensor) | {ex:.2f} s |")
    out.append("")
    for f in ("e.gguf",):
        os.remove(path(f))


def torch_bench(a, only, extra=()):
    """JSON from samples/reference/bench_torch.py in the pinned venv, or None when it is unavailable."""
    py = subprocess.run([os.path.join(ROOT, "scripts", "python-env.sh")], capture_output=True, text=True)
    if py.returncode != 0:
        return None
    r = subprocess.run([py.stdout.strip(), os.path.join(ROOT, "samples", "reference", "bench_torch.py"), "--only", only,
                        *extra], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        print(r.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(r.stdout)


def section_engine(a, out):
    out.append("## Engine (issue #3)\n")
    r = subprocess.run([a.bin, "dev", "bench-forward", a.model], check=True, capture_output=True, text=True)
    w = json.loads(r.stdout.strip().splitlines()[-1])
    t = torch_bench(a, "prefill,generate", ["--runs", "3"]) or {}
    out.append(f"SmolLM2-135M Q4_1, dequantized to f32 at load ({w['load_seconds']:.1f} s, peak RSS {w['peak_rss_mib']:.0f} MiB), "
               f"OpenBLAS kernel {w['blas_core']}, PyTorch 2.13 CPU (samples/reference/bench_torch.py) with 2 threads in the same run.\n")
    out.append("| work | wilke | PyTorch | ratio |")
    out.append("|---|---|---|---|")
    tp = t.get("prefill_tokens_per_s")
    out.append(f"| prefill 22 x 16 tokens, logits at every position | {w['prefill_all_logits_tokens_per_s']:.0f} tok/s | "
               f"{tp:.0f} tok/s | {w['prefill_all_logits_tokens_per_s'] / tp:.2f}x |" if tp else
               f"| prefill 22 x 16 tokens, logits at every position | {w['prefill_all_logits_tokens_per_s']:.0f} tok/s | n/a | |")
    out.append(f"| prefill 22 x 16 tokens, logits at the last token only | {w['prefill_last_logits_tokens_per_s']:.0f} tok/s | | |")
    tg = t.get("generate_tokens_per_s")
    out.append(f"| greedy generation, 32 tokens (KV cache) | {w['generate_tokens_per_s']:.1f} tok/s | "
               + (f"{tg:.1f} tok/s | {w['generate_tokens_per_s'] / tg:.2f}x |" if tg else "n/a | |"))
    out.append("")
    peak = json.loads(subprocess.run([a.bin, "dev", "blas", "--peak"], check=True, capture_output=True,
                                     text=True).stdout.splitlines()[0])["gflops"]
    n = 22 * 16
    fa, fl = w["blas_flops_all_logits"] / 1e9, w["blas_flops_last_logits"] / 1e9
    out.append(f"FLOP floor of the batch prefill: one forward with logits at every position is {fa:.1f} GFLOP of matrix "
               f"products (BLAS calls counted), {fl:.1f} GFLOP with logits at the last token only. At the OpenBLAS sgemm "
               f"peak measured in this run ({peak:.0f} GFLOP/s for 1024^3) the fastest possible all-logits prefill is "
               f"{n / (fa / peak):.0f} tok/s and the last-token one {n / (fl / peak):.0f} tok/s"
               + (f"; PyTorch's all-logits run does {fa * tp / n:.0f} GFLOP/s, so 2x PyTorch would need "
                  f"{2 * fa * tp / n:.0f} GFLOP/s ({2 * fa * tp / n / peak:.1f}x the sgemm peak) for the same work, "
                  f"or {2 * tp / n * fl:.0f} GFLOP/s when only the last logits are computed." if tp else ".")
               + "\n")


def section_edits(a, out):
    out.append("## Edits (issues #5, #12)\n")
    tmp = os.path.join(a.scratch, "bench-edit.wpatch")
    args = [a.bin, "edit", a.model, "--prompt", "{} is located in the city of", "--subject", "The Eiffel Tower",
            "--target", "Rome", "-o", tmp, "--force", "--json"]
    def run(extra, env=None):
        t = time.perf_counter()
        r = subprocess.run(args + extra, check=True, capture_output=True, text=True,
                           env=dict(os.environ, **env) if env else None)
        return time.perf_counter() - t, json.loads(r.stdout)
    st = json.loads(subprocess.run([a.bin, "stats", a.model, "--layers", "0-14", "--json"], check=True,
                                   capture_output=True, text=True).stdout)
    rome_wall, rome = run(["--method", "rome", "--layer", "4", "--no-covariance"])
    # ROME, fast WilKE and full WilKE on the same fact with the same settings (C from `wilke stats`).
    romec_wall, romec = run(["--method", "rome"])
    fast_wall, fast = run(["--method", "wilke", "--scan", "fast"])
    wilke_wall, wilke = run(["--method", "wilke", "--scan", "full"])
    t = torch_bench(a, "rome", ["--runs", "1", "--layer", "4"]) or {}
    e, c, f, w = rome["edits"][0], romec["edits"][0], fast["edits"][0], wilke["edits"][0]
    out.append("One edit of \"The Eiffel Tower is located in the city of\" -> Rome on SmolLM2 (wall time of the whole "
               "command, model load and template sampling included; the edit alone in parentheses):\n")
    out.append("| edit | wilke | PyTorch (rome_reference.py, same algorithm) | ratio |")
    out.append("|---|---|---|---|")
    tr = t.get("rome_edit_s")
    out.append(f"| ROME at layer 4, C = I | {rome_wall:.1f} s ({e['seconds']:.1f} s, {e['adam_steps']} steps) | "
               + (f"{tr:.1f} s ({t.get('rome_steps')} steps) | {tr / e['seconds']:.1f}x |" if tr else "n/a | |"))
    out.append("")
    out.append("WilKE against ROME on that fact, same settings (C from `wilke stats`, 20 steps), one after another in this run:\n")
    out.append("| edit | wall (edit alone) | layer | δ optimizations | vs ROME (edit alone) | full scan / this |")
    out.append("|---|---|---|---|---|---|")
    out.append(f"| ROME at its layer {c['layer']} | {romec_wall:.1f} s ({c['seconds']:.1f} s) | {c['layer']} | 1 | 1.00x | "
               f"{w['seconds'] / c['seconds']:.1f}x |")
    k = len(f["relative_update"])
    out.append(f"| WilKE `--scan fast` (estimates for layers 0-14; optimized: the {k} of the best 3 within 1.09x of the best estimate) | {fast_wall:.1f} s ({f['seconds']:.1f} s) | "
               f"{f['layer']} | {k} | {f['seconds'] / c['seconds']:.2f}x | {w['seconds'] / f['seconds']:.1f}x |")
    out.append(f"| WilKE `--scan full` (layers 0-14, two at a time) | {wilke_wall:.1f} s ({w['seconds']:.1f} s) | {w['layer']} | "
               f"{len(w['relative_update'])} | {w['seconds'] / c['seconds']:.2f}x | 1.0x |")
    out.append("")
    peak = [json.loads(l) for l in subprocess.run([a.bin, "dev", "blas", "--peak"], check=True, capture_output=True,
                                                   text=True).stdout.splitlines() if l.startswith("{")]
    big, shapes = peak[0], peak[1:]
    out.append(f"FLOP count per edit (every BLAS call counted by `BLAS.operations`; attention scores, norms and RoPE "
               f"are outside it and small) against the sgemm peak measured in the same run: {big['gflops']:.0f} GFLOP/s "
               f"for 1024^3, " + ", ".join(f"{x['gflops']:.0f} GFLOP/s for {x['m']}x{x['k']} @ {x['k']}x{x['n']}" for x in shapes)
               + " (an edit step's MLP shapes).\n")
    out.append("| edit | BLAS GFLOP | wall of the edit | achieved GFLOP/s | of the 1024^3 peak | reference formulation (ALGORITHM.md §8, ~170 GFLOP per step) |")
    out.append("|---|---|---|---|---|---|")
    for label, r, steps in [("ROME at layer 4, C = I", e, len(e["losses"])), (f"ROME at layer {c['layer']}", c, len(c["losses"])),
                            ("WilKE fast", f, None), ("WilKE full, scan of layers 0-14", w, None)]:
        gf = r["blas_flops"] / 1e9
        ref = f"~{170 * steps:,} GFLOP ({steps} passes)" if steps else f"~{len(r['relative_update'])} x a ROME edit"
        out.append(f"| {label} | {gf:,.1f} | {r['seconds']:.1f} s | {gf / r['seconds']:.1f} | "
                   f"{gf / r['seconds'] / big['gflops']:.0%} | {ref} |")
    out.append("")
    stat = st.get("statistics") or {}
    samp = st.get("sampling") or {}
    if stat:
        out.append(f"`wilke stats --layers 0-14`: {stat['tokens_per_second']:.0f} tokens/s for the statistics pass "
                   f"({stat['layers']} layers at once)" + (f", {samp['tokens_per_second']:.0f} tokens/s sampling the corpus" if samp else "")
                   + ".\n")
    else:
        out.append("`wilke stats`: all layers came from the cache in this run (delete ~/.cache/wilke/stats to time it).\n")


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_scale import section_scale  # noqa: E402

SECTIONS = {"formats": section_formats, "engine": section_engine, "patches": section_patches, "edits": section_edits,
            "scale": section_scale}


def merge(header, ran, path, partial):
    """The report's lines: with --only, the sections not run keep their text from the existing report (and
    its preamble), so re-measuring one section does not drop the others."""
    if not partial or not os.path.exists(path):
        return header + [l for name in SECTIONS if name in ran for l in ran[name]]
    old = open(path).read().split("\n")
    starts = [i for i, l in enumerate(old) if l.startswith("## ")] + [len(old)]
    preamble = old[:starts[0]]
    sections = [old[a:b] for a, b in zip(starts, starts[1:])]
    out = preamble
    for name in SECTIONS:
        if name in ran:
            out += ran[name]
        else:
            key = SECTION_TITLES[name]
            out += next((sec for sec in sections if sec[0].startswith(key)), [])
    while out and out[-1] == "":
        out.pop()
    return out


SECTION_TITLES = {"formats": "## Formats", "engine": "## Engine", "patches": "## Patches", "edits": "## Edits",
                  "scale": "## Scale"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--only", default=",".join(SECTIONS))
    p.add_argument("--scale-shapes", default="smol,1b,8b", help="Scale section: which of smol, 1b, 8b to measure.")
    p.add_argument("--scratch", default=os.environ.get("WILKE_BENCH_DIR", os.path.join(tempfile.gettempdir(), "wilke-bench")))
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    a = p.parse_args()
    os.makedirs(a.scratch, exist_ok=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    out = ["# Benchmarks", "",
           f"Generated by `make bench` on {time.strftime('%Y-%m-%d')}: {cpu}, {os.cpu_count()} cores, "
           f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB. Release build.", ""]
    ran = {}
    for name in a.only.split(","):
        print(f"bench: {name} ...", file=sys.stderr)
        part = []
        SECTIONS[name](a, part)
        ran[name] = part
    text = "\n".join(merge(out, ran, a.out, partial=set(ran) != set(SECTIONS))) + "\n"
    with open(a.out + ".tmp", "w") as f:
        f.write(text)
    os.replace(a.out + ".tmp", a.out)
    print(f"bench: wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
