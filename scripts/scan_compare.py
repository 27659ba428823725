"""Fast vs full WilKE scan on the same facts (issue #12). Reads one `wilke edit --scan full --json` report per
case id from a full-scan directory and the fast scan's per-layer estimates, from `wilke dev estimates`
(JSON lines with case_id) or from `wilke edit --scan fast --json` reports, and prints the comparison table
(markdown) for the fast scan with --scan-top K and --scan-margin M (the default: K = 3, M = 1.09; M = 0 optimizes
all K).

  python3 scripts/scan_compare.py docs/results/scan-compare/full docs/results/scan-compare/estimates.jsonl \
      --fast-runs docs/results/scan-compare/fast --k 3 --margin 1.09 [--clamp 4]

The fast scan's choice is the exact argmin of full's LAs over the layers it optimizes (the best estimate and
those of the K best within a factor M of it):
an optimized layer's LA does not depend on the mode (where a fast run optimized a layer the script prints
the largest difference from full's LA), so one set of estimates shows every K. When the choice is full's
layer, the edit is full's edit; otherwise its success is that of a fast run (--fast-runs) that chose the
layer (else "?"). Success: p(new) > p(old) after the edit.
"""
import argparse, json, math, os


def report(d, i):
    p = os.path.join(d, f"{i}.json") if d else None
    return json.load(open(p))["edits"][0] if p and os.path.exists(p) else None


def estimates(source, clamp=None):
    """case id -> {layer: LA_est}, from a `wilke dev estimates` JSONL file or a folder of fast reports. With
    `clamp`, LA_est is recomputed from the JSONL's factors with the clamp bound (docs/ALGORITHM_NOTES.md,
    "The clamp bound"): min(e^2.19 ‖h‖^½, clamp ‖m₀‖) / (|k·û| ‖W‖_F), for reports made before it."""
    out = {}
    if clamp is not None:
        law = lambda L: min(math.exp(2.19) * math.sqrt(L["h"]), clamp * L["m0"]) / (L["denominator"] * L["w"])
        for line in open(source):
            d = json.loads(line)
            out[d["case_id"]] = {L["layer"]: law(L) for L in d["layers"]}
        return out
    if os.path.isdir(source):
        for f in os.listdir(source):
            if f.endswith(".json") and f[:-5].isdigit():
                out[int(f[:-5])] = {int(k): v for k, v in json.load(open(os.path.join(source, f)))["edits"][0]["estimates"].items()}
    else:
        for line in open(source):
            d = json.loads(line)
            out[d["case_id"]] = {L["layer"]: L["estimate"] for L in d["layers"]}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("full_dir"); ap.add_argument("estimates", help="`wilke dev estimates` JSONL or a folder of fast reports")
    ap.add_argument("--fast-runs", help="folder of `wilke edit --scan fast --json` reports (success where the layers differ)")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--margin", type=float, default=1.09)
    ap.add_argument("--clamp", type=float, help="recompute LA_est with the clamp bound at this clamp_norm_factor (JSONL only)")
    a = ap.parse_args()
    est_all = estimates(a.estimates, a.clamp)
    ids = sorted(int(f[:-5]) for f in os.listdir(a.full_dir) if f.endswith(".json") and f[:-5].isdigit())
    rows, n, same, within, succ_same, diffs, hits, tf = [], 0, 0, 0, 0, [], {k: [0, 0] for k in range(1, 6)}, []
    optimized = []
    for i in ids:
        full = report(a.full_dir, i)
        if not full or i not in est_all:
            continue
        n += 1
        la = {int(k): v for k, v in full["relative_update"].items()}
        est = est_all[i]
        ranked = sorted(est, key=lambda l: (est[l], l))
        best = full["layer"]
        for k in hits:
            p = min(sorted(ranked[:k]), key=lambda l: la[l])
            hits[k][0] += p == best; hits[k][1] += la[p] <= 1.1 * la[best]
        chosen = [l for l in ranked[:a.k] if not a.margin or est[l] <= a.margin * est[ranked[0]]]
        pick = min(sorted(chosen), key=lambda l: la[l])
        optimized.append(len(chosen))
        run = report(a.fast_runs, i)
        if run:
            diffs += [abs(v - la[int(l)]) / la[int(l)] for l, v in run["relative_update"].items()]
        ok_full = full["p_new_after"] > full["p_old_after"]
        ok_fast = ok_full if pick == best else (run["p_new_after"] > run["p_old_after"] if run and run["layer"] == pick else None)
        same += pick == best; within += la[pick] <= 1.1 * la[best]; succ_same += ok_fast == ok_full
        tf.append(full["seconds"])
        yn = lambda b: "?" if b is None else ("yes" if b else "no")
        rows.append(f"| {i} | {best} | {la[best]:.4f} | {pick} | {la[pick]:.4f} | {la[pick] / la[best]:.3f} | "
                    f"{ranked.index(best) + 1} | {len(chosen)} | {yn(ok_full)} / {yn(ok_fast)} |")
    rule = f"K = {a.k}" + (f", M = {a.margin}" if a.margin else "")
    print(f"| case id | full's layer | LA (full's layer) | fast's layer ({rule}) | LA (fast's layer) | fast / full | full's layer's rank by LA_est | layers optimized | success full / fast |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if n:
        dist = ", ".join(f"{optimized.count(k)} x {k}" for k in sorted(set(optimized)))
        print(f"\n{n} facts, {rule}: layers optimized {dist} (mean {sum(optimized) / n:.2f}); same layer {same}/{n} ({same / n:.0%}), fast's LA within 10% of full's {within}/{n}, "
              f"same success {succ_same}/{n}. Same layer (within 10%) for K = "
              + ", ".join(f"{k}: {v[0]}/{n} ({v[1]})" for k, v in hits.items()) + " without a margin"
              + (f". Largest relative difference of an optimized layer's LA between a fast run and full: {max(diffs):.1g}" if diffs else "")
              + ".")


if __name__ == "__main__":
    main()
