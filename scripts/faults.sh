#!/usr/bin/env bash
# Fault injection for the patch verbs (issue #16): kill -9 at random points of apply / revert / stack
# (-o and in place), concurrent writers, a full disk (ENOSPC on a small tmpfs, when root), FIFOs and
# symlinks. Every outcome is checked against reference hashes made by uninterrupted runs:
#   corrupt  an output or in-place model whose bytes are neither the old nor the new state
#   partial  such a file shorter than the complete one
#   lost     a writer that exited 0 whose patch is not in the checkpoint afterwards
#   leaked   temp files (.NAME.tmp-PID-N) of dead processes left after the next run in that directory
# All four must be 0; the script exits 1 otherwise.
#
#   scripts/faults.sh [WILKE_BINARY]      FAULTS_KILLS=200 (kill -9 goal), FAULTS_MB=8 (model size)
set -uo pipefail
cd "$(dirname "$0")/.."
W="${1:-.build/release/wilke}"
W="$(cd "$(dirname "$W")" && pwd)/$(basename "$W")"
KILLS_GOAL="${FAULTS_KILLS:-200}"
MB="${FAULTS_MB:-8}"
base_dir=/tmp; [ -d /dev/shm ] && [ -w /dev/shm ] && base_dir=/dev/shm
D="$(mktemp -d "$base_dir/wilke-faults.XXXXXX")"
trap 'rm -rf "$D"' EXIT
cd "$D"

runs=0 kills=0 checked=0 corrupt=0 partial=0 lost=0 leaked=0 refused=0
sha() { sha256sum "$1" | cut -c1-64; }
size() { stat -c %s "$1"; }
fail() { echo "faults: $*" >&2; }

# Fixture: a bare safetensors file of 4 F16 tensors, two rank-1 patches on different tensors.
"$W" dev gen-safetensors model.safetensors --tensors 4 --bytes $((MB << 20)) >/dev/null
"$W" dev gen-patch model.safetensors --tensor model.layers.0.block.0.weight --seed 1 -o a.wpatch >/dev/null
"$W" dev gen-patch model.safetensors --tensor model.layers.0.block.1.weight --seed 2 -o b.wpatch >/dev/null
A_ID=$("$W" show a.wpatch --json | sed -n 's/.*"id" : "\([0-9a-f]*\)".*/\1/p' | head -1)
B_ID=$("$W" show b.wpatch --json | sed -n 's/.*"id" : "\([0-9a-f]*\)".*/\1/p' | head -1)
# References from uninterrupted runs.
"$W" apply model.safetensors a.wpatch -o ref-a.safetensors >/dev/null
"$W" stack a.wpatch b.wpatch -o ref-ab.wpatch >/dev/null
SHA_BASE=$(sha model.safetensors); SHA_A=$(sha ref-a.safetensors); SHA_AB_PATCH=$(sha ref-ab.wpatch)
SIZE_A=$(size ref-a.safetensors); SIZE_AB_PATCH=$(size ref-ab.wpatch)
t0=$(date +%s%N); "$W" apply model.safetensors a.wpatch -o timing.safetensors >/dev/null; t1=$(date +%s%N)
rm -f timing.safetensors
DUR_MS=$(( (t1 - t0) / 1000000 )); [ "$DUR_MS" -lt 20 ] && DUR_MS=20
echo "faults: model ${MB} MB in $D, one apply takes ${DUR_MS} ms; killing at random points until $KILLS_GOAL kills"

# Runs "$@" in the background and kills it with SIGKILL after a random delay within one run's duration.
# Sets $status to the exit status (137 when the kill landed).
kill_run() {
    "$@" >/dev/null 2>&1 &
    local pid=$! delay=$(( RANDOM % DUR_MS ))
    sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
    kill -9 "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null; status=$?
    runs=$((runs + 1))
    [ "$status" = 137 ] && kills=$((kills + 1))
}

# An output path must be absent or byte-identical to its reference.
check_output() {  # check_output PATH REF_SHA REF_SIZE
    checked=$((checked + 1))
    [ -e "$1" ] || return 0
    [ "$(sha "$1")" = "$2" ] && return 0
    if [ "$(size "$1")" -lt "$3" ]; then partial=$((partial + 1)); else corrupt=$((corrupt + 1)); fi
    fail "$1 is neither absent nor complete"
}

# An in-place model must be in one of the allowed states (by sha).
check_state() {  # check_state PATH SHA…
    checked=$((checked + 1))
    local s; s=$(sha "$1"); shift
    for ok in "$@"; do [ "$s" = "$ok" ] && return 0; done
    corrupt=$((corrupt + 1)); fail "in-place model has unexpected bytes $s"
}

# Dead processes' temp files must be gone after a completed run in the same directory.
check_temps() {  # check_temps DIR
    local f pid
    for f in "$1"/.*.tmp-*; do
        [ -e "$f" ] || continue
        pid=$(echo "$f" | sed -n 's/.*\.tmp-\([0-9]*\)-[0-9]*$/\1/p')
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then leaked=$((leaked + 1)); fail "leaked temp $f"; fi
    done
}

mkdir -p o ip
cp model.safetensors ip/model.safetensors
round=0
while [ "$kills" -lt "$KILLS_GOAL" ]; do
    round=$((round + 1))
    # 1. apply -o: the output is absent or complete; the input never changes.
    rm -f o/out.safetensors
    kill_run "$W" apply model.safetensors a.wpatch -o o/out.safetensors
    check_output o/out.safetensors "$SHA_A" "$SIZE_A"
    check_state model.safetensors "$SHA_BASE"

    # 2. apply --in-place, then 3. revert --in-place: the model is the old or the new state, never between.
    kill_run "$W" apply ip/model.safetensors a.wpatch --in-place
    check_state ip/model.safetensors "$SHA_BASE" "$SHA_A"
    if [ "$(sha ip/model.safetensors)" = "$SHA_A" ]; then
        kill_run "$W" revert ip/model.safetensors a.wpatch --in-place
        check_state ip/model.safetensors "$SHA_BASE" "$SHA_A"
    fi
    # Back to the base with an uninterrupted run (which also sweeps the killed runs' temp files).
    if [ "$(sha ip/model.safetensors)" = "$SHA_A" ]; then "$W" revert ip/model.safetensors a.wpatch --in-place >/dev/null; runs=$((runs + 1)); fi

    # 4. stack -o.
    rm -f o/ab.wpatch
    kill_run "$W" stack a.wpatch b.wpatch -o o/ab.wpatch
    check_output o/ab.wpatch "$SHA_AB_PATCH" "$SIZE_AB_PATCH"

    # 5. Concurrent in-place writers of different patches (every 4th round one of them is killed): each
    # writer that exits 0 must find its patch in the checkpoint afterwards.
    "$W" apply ip/model.safetensors a.wpatch --in-place >/dev/null 2>&1 & pa=$!
    "$W" apply ip/model.safetensors b.wpatch --in-place >/dev/null 2>&1 & pb=$!
    if [ $((round % 4)) = 0 ]; then sleep "0.0$((RANDOM % 9))"; kill -9 "$pb" 2>/dev/null; fi
    { wait "$pa"; } 2>/dev/null; sa=$?; { wait "$pb"; } 2>/dev/null; sb=$?
    runs=$((runs + 2)); [ "$sb" = 137 ] && kills=$((kills + 1))
    checked=$((checked + 1))
    log=$("$W" log ip/model.safetensors --json 2>/dev/null)
    applied=()
    for pair in "$sa:a:$A_ID" "$sb:b:$B_ID"; do
        st=${pair%%:*}; rest=${pair#*:}; name=${rest%%:*}; id=${rest#*:}
        if echo "$log" | grep -q "$id"; then applied+=("$name.wpatch");
        elif [ "$st" = 0 ]; then lost=$((lost + 1)); fail "writer of $name exited 0 but its patch is gone"; fi
        [ "$st" != 0 ] && [ "$st" != 137 ] && refused=$((refused + 1))
    done
    if [ ${#applied[@]} -gt 0 ]; then
        "$W" revert ip/model.safetensors "${applied[@]}" --in-place >/dev/null 2>&1 || { corrupt=$((corrupt + 1)); fail "cannot revert ${applied[*]}"; }
    fi
    check_state ip/model.safetensors "$SHA_BASE"
    [ $((round % 10)) = 0 ] && echo "  round $round: runs $runs, kills $kills"
done
# One uninterrupted run in each directory sweeps every killed run's temp files; none may be left.
"$W" apply model.safetensors a.wpatch -o o/final.safetensors >/dev/null; runs=$((runs + 1))
"$W" apply ip/model.safetensors a.wpatch --in-place >/dev/null; runs=$((runs + 1))
check_temps o
check_temps ip

# 6. Concurrent -o writers of the same new path: exactly one wins.
for i in $(seq 1 10); do
    rm -f o/race.safetensors
    "$W" apply model.safetensors a.wpatch -o o/race.safetensors >/dev/null 2>&1 & p1=$!
    "$W" apply model.safetensors a.wpatch -o o/race.safetensors >/dev/null 2>&1 & p2=$!
    wait "$p1"; s1=$?; wait "$p2"; s2=$?
    runs=$((runs + 2)); checked=$((checked + 1))
    [ $(( (s1 == 0) + (s2 == 0) )) = 1 ] || { lost=$((lost + 1)); fail "race for one output: exit $s1 and $s2"; }
    check_output o/race.safetensors "$SHA_A" "$SIZE_A"
done

# 7. FIFOs are refused at once; symlinks: -o onto a dangling one is refused, in place edits the target.
mkfifo fifo
for args in "show fifo" "inspect fifo" "apply fifo a.wpatch -o o/x" "apply model.safetensors fifo -o o/x" "verify model.safetensors fifo"; do
    runs=$((runs + 1)); checked=$((checked + 1))
    # shellcheck disable=SC2086
    timeout 5 "$W" $args >/dev/null 2>&1; s=$?
    if [ "$s" = 124 ]; then corrupt=$((corrupt + 1)); fail "'$args' hung on a FIFO"; else refused=$((refused + 1)); fi
done
ln -s nowhere o/dangling
runs=$((runs + 1)); checked=$((checked + 1))
if "$W" apply model.safetensors a.wpatch -o o/dangling >/dev/null 2>&1 || [ -e o/nowhere ]; then corrupt=$((corrupt + 1)); fail "-o onto a dangling symlink was written"; else refused=$((refused + 1)); fi
mkdir -p blobs snap; cp model.safetensors blobs/blob; chmod 600 blobs/blob; ln -s ../blobs/blob snap/model.safetensors
"$W" apply snap/model.safetensors a.wpatch --in-place >/dev/null; runs=$((runs + 1)); checked=$((checked + 1))
if [ ! -L snap/model.safetensors ] || [ "$(sha blobs/blob)" != "$SHA_A" ] || [ "$(stat -c %a blobs/blob)" != 600 ]; then
    corrupt=$((corrupt + 1)); fail "in place through a symlink: link, content or mode not kept"
fi

# 8. A full disk: a tmpfs smaller than the output (root only).
enospc=""
if [ "$(id -u)" = 0 ] && mkdir -p full && mount -t tmpfs -o size=$((MB / 2))m tmpfs full 2>/dev/null; then
    for i in 1 2 3; do
        runs=$((runs + 1)); checked=$((checked + 1))
        out=$("$W" apply model.safetensors a.wpatch -o full/out.safetensors 2>&1); s=$?
        if [ "$s" = 0 ] || [ -n "$(ls -A full)" ]; then partial=$((partial + 1)); fail "ENOSPC left $(ls -A full)"; fi
        echo "$out" | grep -q "No space left" && refused=$((refused + 1))
    done
    umount full
    enospc="3 runs refused with ENOSPC, nothing left behind"
else
    # No tmpfs to fill (not root, or mounting is not permitted here): the file-size limit makes the
    # write fail the same way (EFBIG instead of ENOSPC), with the same clean-up to check.
    for i in 1 2 3; do
        runs=$((runs + 1)); checked=$((checked + 1))
        out=$( (ulimit -f $((MB * 1024 / 2)); exec "$W" apply model.safetensors a.wpatch -o o/full.safetensors) 2>&1 ); s=$?
        if [ "$s" = 0 ] || ls -A o | grep -q full; then partial=$((partial + 1)); fail "a full file system left $(ls -A o | grep full)"; fi
        echo "$out" | grep -q "File too large" && refused=$((refused + 1))
    done
    enospc="no tmpfs mount permitted; 3 runs under ulimit -f (EFBIG) refused, nothing left behind"
fi

echo "faults: runs $runs, kills $kills, outputs checked $checked, refused cleanly $refused; ENOSPC: $enospc"
echo "faults: corrupt $corrupt, partial $partial, lost $lost, leaked temps $leaked"
[ $((corrupt + partial + lost + leaked)) = 0 ]
