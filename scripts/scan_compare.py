"""Fast vs full WilKE scan on the same facts (issue #12). Reads one `wilke edit --json` report per case id
from a full-scan directory (--scan full) and a fast-scan directory (--scan fast, any --scan-top) and
prints the comparison table (markdown) for the fast scan with --scan-top K.

  python3 scripts/scan_compare.py docs/results/scan-compare/full docs/results/scan-compare/fast --k 4

The fast scan's choice for K is replayed from the fast report's estimates (all scanned layers) and the
full report's exact LAs: an optimized layer's LA does not depend on the mode (the script prints the
largest difference where both runs optimized a layer), so one fast run at any K shows every K. When the
choice is full's layer, the edit is full's edit; otherwise its success is that of the fast run if that
run optimized the layer (else "?"). Success: p(new) > p(old) after the edit.
"""
import argparse, json, os


def load(d, name):
    p = os.path.join(d, name)
    return json.load(open(p))["edits"][0] if os.path.exists(p) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("full_dir"); ap.add_argument("fast_dir"); ap.add_argument("--k", type=int, default=4)
    a = ap.parse_args()
    ids = sorted(int(f[:-5]) for f in os.listdir(a.full_dir) if f.endswith(".json") and f[:-5].isdigit())
    rows, n, same, within, succ_same, diffs, hits, tf, tq = [], 0, 0, 0, 0, [], {k: 0 for k in range(1, 6)}, [], []
    for i in ids:
        full, fast = load(a.full_dir, f"{i}.json"), load(a.fast_dir, f"{i}.json")
        if not full or not fast:
            continue
        n += 1
        la = {int(k): v for k, v in full["relative_update"].items()}
        la_run = {int(k): v for k, v in fast["relative_update"].items()}
        diffs += [abs(v - la[l]) / la[l] for l, v in la_run.items()]
        est = {int(k): v for k, v in fast["estimates"].items()}
        ranked = sorted(est, key=lambda l: (est[l], l))
        for k in hits:
            hits[k] += min(sorted(ranked[:k]), key=lambda l: la[l]) == full["layer"]
        pick = min(sorted(ranked[:a.k]), key=lambda l: la[l])
        ok_full = full["p_new_after"] > full["p_old_after"]
        ok_fast = ok_full if pick == full["layer"] else (fast["p_new_after"] > fast["p_old_after"] if fast["layer"] == pick else None)
        same += pick == full["layer"]; within += la[pick] <= 1.1 * la[full["layer"]]; succ_same += ok_fast == ok_full
        tf.append(full["seconds"]); tq.append(fast["seconds"])
        yn = lambda b: "?" if b is None else ("yes" if b else "no")
        rows.append(f"| {i} | {full['layer']} | {la[full['layer']]:.4f} | {pick} | {la[pick]:.4f} | {la[pick] / la[full['layer']]:.3f} | "
                    f"{ranked.index(full['layer']) + 1} | {yn(ok_full)} / {yn(ok_fast)} |")
    print(f"| case id | full's layer | LA (full's layer) | fast's layer (K = {a.k}) | LA (fast's layer) | fast / full | full's layer's rank by LA_est | success full / fast |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    med = lambda xs: sorted(xs)[len(xs) // 2]
    if n:
        print(f"\n{n} facts, K = {a.k}: same layer {same}/{n} ({same / n:.0%}), fast's LA within 10% of full's {within}/{n}, "
              f"same success {succ_same}/{n}. Same layer for K = " + ", ".join(f"{k}: {v}/{n}" for k, v in hits.items())
              + f". Largest relative difference of an optimized layer's LA between the two runs: {max(diffs):.1g}. "
              f"Median edit time in these runs: full {med(tf):.0f} s, fast (the runs' own --scan-top) {med(tq):.0f} s.")


if __name__ == "__main__":
    main()
