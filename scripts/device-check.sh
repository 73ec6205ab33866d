#!/usr/bin/env bash
# The GPU check of focusllm, in one unattended run (about 7 minutes): build
# with CUDA, run every C++ test (ctest's list, with each test's own command
# and arguments), compute-sanitizer on the CUDA tests at small sizes, the GPU
# benchmarks (roofline, end to end, GEMM, attention), a PyTorch roofline for
# reference, and a JSON summary rewritten after every phase (a run cut short
# still returns what it did). Written for the device tool (.library/device/README.md):
# only the repository travels, nothing can be downloaded, results go to $OUT
# (at most 8 files come back).
#
#   bash scripts/device-check.sh            from anywhere; works in the repo root
#
# Results (in $OUT, else ./device-out):
#   summary.json   phases, tests per program (passed/failed/skipped), sanitizer
#                  errors, every benchmark JSON line, ptxas register/spill summary
#   build.log      configure + build output, then the -Xptxas -v report
#   tests.log      every test program's output
#   sanitizer.log  compute-sanitizer output
#   bench.jsonl    the benchmarks' JSON lines;  bench.log  their other output
#   env.log        nvidia-smi, toolchain versions
#
# It never fails and never hangs: every phase runs under `timeout` within a
# total budget, a phase that fails or times out is recorded and the next one
# runs, and the script exits 0 so that the results come back.
#
# Environment:
#   FOCUSLLM_CUDA=off         CPU-only dry run (checks this script where there is no GPU)
#   DEVICE_CHECK_BUDGET=420   total seconds (70 of them kept in reserve)
#   DEVICE_CHECK_SKIP=        phases to leave out, comma-separated: tests,sanitizer,bench
#   DEVICE_CHECK_JOBS=16      build parallelism
#   DEVICE_CHECK_ARCHS=90a    FOCUSLLM_CUDA_ARCHS of the build ("90a": the default build's Hopper target, wgmma kernels included)
#   DEVICE_CHECK_SM80=1       also compile-check the engine for sm_80 when time remains
#   DEVICE_CHECK_E2E_LAYERS=8 layers of the end-to-end model (32 = the full LLaMA-2-7B shape)
#   DEVICE_CHECK_E2E_ARGS     extra arguments of bench_cuda_e2e
#   DEVICE_CHECK_TEST_CAP=150 seconds per test program
#   DEVICE_CHECK_BUILD=build-device   the build folder (reused when it is already built)
#   FOCUSLLM_BENCH_DIR        where the end-to-end checkpoint is written (default: focusllm-bench in the temp folder)
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 0
ROOT=$(pwd)
OUT=${OUT:-$ROOT/device-out}
mkdir -p "$OUT" || exit 0
TMPD=$(mktemp -d 2>/dev/null || echo "${TMPDIR:-/tmp}/device-check.$$")
mkdir -p "$TMPD"

START=$(date +%s)
BUDGET=${DEVICE_CHECK_BUDGET:-420}
RESERVE=70  # seconds kept for the summary, the file trimming and the transfer back
SKIP=,${DEVICE_CHECK_SKIP:-},
skipped() { [[ $SKIP == *,$1,* ]]; }
JOBS=${DEVICE_CHECK_JOBS:-16}
ARCHS=${DEVICE_CHECK_ARCHS:-90a}
E2E_LAYERS=${DEVICE_CHECK_E2E_LAYERS:-8}
CUDA_MODE=${FOCUSLLM_CUDA:-on}
BUILD=${DEVICE_CHECK_BUILD:-$ROOT/build-device}
export FOCUSLLM_BENCH_DIR=${FOCUSLLM_BENCH_DIR:-${TMPDIR:-/tmp}/focusllm-bench}

PHASES=$TMPD/phases.tsv   # name  status  rc  seconds  note
TESTS=$TMPD/tests.tsv     # program  args  status  rc  seconds  log  fresh (built by this run)
SAN=$TMPD/sanitizer.tsv   # program  status  rc  seconds  log
BENCHES=$TMPD/benches.tsv # program  status  rc  seconds
: >"$PHASES"; : >"$TESTS"; : >"$SAN"; : >"$BENCHES"
for f in build.log tests.log sanitizer.log bench.jsonl bench.log env.log; do : >"$OUT/$f"; done

left() { echo $((BUDGET - ($(date +%s) - START) - RESERVE)); }

status_of() {  # exit code -> word
  case $1 in
    0) echo ok ;; 77) echo skipped ;; 124 | 137) echo timeout ;; *) echo failed ;;
  esac
}

# run NAME CAP LOG CMD...: CMD under a timeout of min(CAP, time left), its
# output appended to LOG. Sets RC, SECS and ST (its status word); records the phase.
run() {
  local name=$1 cap=$2 log=$3
  shift 3
  local t
  t=$(left)
  ((cap < t)) && t=$cap
  if ((t < 5)); then
    RC=124 SECS=0 ST="not run"
    printf '%s\tnot run\t-\t0\tout of time\n' "$name" >>"$PHASES"
    echo "=== $name: not run (out of time)" >>"$log"
    return 0
  fi
  echo "=== $name (timeout ${t}s): $*" >>"$log"
  local t0
  t0=$(date +%s)
  timeout -k 10 "$t" "$@" >>"$log" 2>&1 </dev/null
  RC=$?
  SECS=$(($(date +%s) - t0))
  ST=$(status_of "$RC")
  ((RC > 128 && RC != 137)) && ST=crashed
  echo "=== $name: $ST (exit $RC, ${SECS}s)" >>"$log"
  printf '%s\t%s\t%s\t%s\t\n' "$name" "$ST" "$RC" "$SECS" >>"$PHASES"
  return 0
}

note() { printf '%s\t%s\t-\t0\t%s\n' "$1" "$2" "$3" >>"$PHASES"; }

# The summary: summary.json from the tables so far. Called after every phase,
# so that a run stopped at its time limit still returns its results; "final"
# also prints the short table.
cat >"$TMPD/summary.py" <<'PY'
import json, os, re, subprocess, sys, time

tmp, out, mode, archs, budget, start, layers, final = sys.argv[1:9]
final = final == "final"
def rows(name, n):
    try:
        with open(os.path.join(tmp, name)) as f:
            return [(l.rstrip("\n").split("\t") + [""] * n)[:n] for l in f if l.strip()]
    except OSError:
        return []
def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""
def num(x):
    try:
        return int(x)
    except ValueError:
        return None

phases = [dict(name=a, status=b, rc=num(c), seconds=num(d), note=e) for a, b, c, d, e in rows("phases.tsv", 5)]

tests, totals, bad = [], dict(passed=0, failed=0, skipped=0), []
# On a machine where nvidia-smi ran, a CUDA test that skips itself is a failure of this check.
gpu = mode != "off" and any(p["name"] == "env-nvidia-smi" and p["status"] == "ok" for p in phases)
build_ok = any(p["name"] == "build" and p["status"] == "ok" for p in phases)
for prog, args, st, rc, secs, log, fresh in rows("tests.tsv", 7):
    text = read(log)
    fresh = build_ok or fresh == "yes"
    t = dict(program=prog, args=args, status=st, rc=num(rc), seconds=num(secs), fresh_binary=fresh)
    m = re.findall(r"^(\d+) passed, (\d+) failed, (\d+) skipped$", text, re.M)
    if m:
        t.update(passed=int(m[-1][0]), failed=int(m[-1][1]), skipped=int(m[-1][2]))
        for k in totals:
            totals[k] += t[k]
    t["failures"] = [l[5:] for l in text.splitlines() if l.startswith("FAIL ")][:30]
    t["skips"] = [l[5:] for l in text.splitlines() if l.startswith("skip ")][:10]
    if st in ("failed", "crashed", "timeout") or not m:
        t["tail"] = text.splitlines()[-15:]
    is_cuda = (prog.startswith("cuda_") and prog != "cuda_attention_emu_test") or args == "cuda"
    if st not in ("ok", "skipped") or not fresh:
        bad.append(prog + (" " + args if args else ""))
    elif gpu and is_cuda and st == "skipped":
        bad.append(prog + (" " + args if args else "") + " (skipped on a GPU machine)")
    tests.append(t)

sanitizer = []
for prog, st, rc, secs, log in rows("sanitizer.tsv", 5):
    text = read(log)
    m = re.findall(r"ERROR SUMMARY: (\d+) error", text)
    s = dict(program=prog, status=st, rc=num(rc), seconds=num(secs), errors=int(m[-1]) if m else None)
    if m and int(m[-1]) > 0:
        s["first_errors"] = [l for l in text.splitlines() if l.startswith("========= ") and "rror" in l][:10]
    sanitizer.append(s)

bench_lines = []
for line in read(os.path.join(out, "bench.jsonl")).splitlines():
    try:
        bench_lines.append(json.loads(line))
    except ValueError:
        bench_lines.append({"unparsed": line})
benches = [dict(program=a, status=b, rc=num(c), seconds=num(d)) for a, b, c, d in rows("benches.tsv", 4)]

# ptxas -v: registers, spills and stack per kernel.
log = read(os.path.join(out, "build.log"))
kernels, cur = {}, None
for l in log.splitlines():
    m = re.search(r"Compiling entry function '([^']+)' for '(sm_\w+)'", l)
    if m:
        cur = (m.group(1), m.group(2)); kernels[cur] = {}; continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", l)
    if m and cur:
        kernels[cur].update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
    m = re.search(r"Used (\d+) registers", l)
    if m and cur:
        kernels[cur]["registers"] = int(m.group(1))
names = sorted({k[0] for k in kernels})
demangled = dict(zip(names, names))
try:
    r = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, timeout=20)
    if r.returncode == 0 and len(r.stdout.splitlines()) == len(names):
        demangled = dict(zip(names, r.stdout.splitlines()))
except Exception:
    pass
klist = [dict(kernel=demangled[k[0]][:200], arch=k[1], **v) for k, v in kernels.items()]
spilling = [k for k in klist if k.get("spill_stores", 0) or k.get("spill_loads", 0)]
build_phase = next((p for p in phases if p["name"] == "build"), {})
build = dict(status=build_phase.get("status"), seconds=build_phase.get("seconds"),
             errors=[l for l in log.splitlines() if " error" in l or l.startswith("FAILED")][:30],
             warnings=sum(1 for l in log.splitlines() if "warning" in l),
             ptxas=dict(kernels=len(klist), max_registers=max([k.get("registers", 0) for k in klist] or [0]),
                        spilling=spilling[:40],
                        most_registers=sorted(klist, key=lambda k: -k.get("registers", 0))[:15]))

git = {}
try:
    git["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
    git["changed_paths"] = len(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True,
                                              timeout=10).stdout.splitlines())
except Exception:
    pass
san_errors = sum(s["errors"] or 0 for s in sanitizer)
summary = dict(
    script="scripts/device-check.sh", mode="cuda" if mode != "off" else "cpu-dry-run", archs=archs,
    started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(start))), elapsed_s=int(time.time()) - int(start),
    budget_s=int(budget), e2e_layers=int(layers), git=git,
    device=next((l for l in read(os.path.join(out, "env.log")).splitlines() if l.startswith("GPU 0:")), None),
    ok=build.get("status") == "ok" and not bad and san_errors == 0,
    build=build, tests_total=dict(totals, programs_not_ok=bad), tests=tests, sanitizer=sanitizer,
    benches=benches, bench_lines=bench_lines, phases=phases)
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)

if not final:
    sys.exit(0)
# The short table the device tool's reply shows.
print(f"device-check: {'OK' if summary['ok'] else 'NOT OK'}  mode={summary['mode']}  "
      f"{summary['elapsed_s']}s of {budget}s  build={build['status']} ({build['seconds']}s, "
      f"{len(klist)} kernels, {len(spilling)} spilling)")
for t in tests:
    counts = f"{t.get('passed', '-')}/{t.get('failed', '-')}/{t.get('skipped', '-')}"
    stale = "" if t["fresh_binary"] or t["status"] == "missing" else "  (stale binary: not rebuilt)"
    print(f"  test {t['program'] + (' ' + t['args'] if t['args'] else ''):<28} {t['status']:<8} p/f/s {counts}{stale}")
    for l in t["failures"][:3]:
        print(f"      FAIL {l[:110]}")
for s in sanitizer:
    print(f"  sanitizer {s['program']:<23} {s['status']:<8} errors {s['errors']}")
for b in benches:
    print(f"  bench {b['program']:<27} {b['status']:<8} {b['seconds']}s")
for l in bench_lines:
    if l.get("what") in ("summary", "gemm_bf16", "dram_copy") or (l.get("what") == "context" and "ingest_s" in l):
        keep = {k: v for k, v in l.items() if k in ("bench", "what", "impl", "context", "TFLOP_per_s", "GB_per_s",
                "dram_GB_per_s", "bf16_TFLOP_per_s", "ingest_s", "step_ms_median", "ingest_s_32_layers",
                "step_ms_32_layers", "ingest_ratio_to_target", "step_ratio_to_target")}
        print("  " + json.dumps(keep))
PY
summarize() {
  if command -v python3 >/dev/null; then
    timeout 30 python3 "$TMPD/summary.py" "$TMPD" "$OUT" "$CUDA_MODE" "$ARCHS" "$BUDGET" "$START" "$E2E_LAYERS" "${1:-}" ||
      echo "{\"error\": \"the summary script failed\"}" >"$OUT/summary.json"
  else
    # No Python: the raw tables, so that nothing is lost.
    {
      echo "{\"error\": \"python3 missing: raw tables follow\","
      echo " \"phases\": \"$(sed 's/["\\]/ /g' "$PHASES" | tr '\n\t' '|,')\","
      echo " \"tests\": \"$(sed 's/["\\]/ /g' "$TESTS" | tr '\n\t' '|,')\"}"
    } >"$OUT/summary.json"
  fi
}

# ---- environment -------------------------------------------------------------------
{
  echo "date: $(date -u +%FT%TZ)  host: $(hostname 2>/dev/null)  mode: FOCUSLLM_CUDA=$CUDA_MODE archs=$ARCHS"
  echo "git: $(git rev-parse HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | wc -l) changed paths"
} >>"$OUT/env.log"
run env-nvidia-smi 20 "$OUT/env.log" bash -c 'nvidia-smi -L; nvidia-smi; \
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv'
run env-tools 20 "$OUT/env.log" bash -c 'nvcc --version; cmake --version | head -1; ninja --version; \
  command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer; python3 --version; node --version'

# ---- build ---------------------------------------------------------------------------
# Keep going past a failed target (ninja -k 0, make -k), so that one broken
# program does not take the others' results with it.
if command -v ninja >/dev/null; then GEN=(-G Ninja) KEEP=(-k 0); else GEN=() KEEP=(-k); fi
run configure 90 "$OUT/build.log" cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_FLAGS="${DEVICE_CHECK_CUDA_FLAGS:---split-compile=0}" \
  -DFOCUSLLM_BUILD_TESTS=ON -DFOCUSLLM_CUDA="$CUDA_MODE" -DFOCUSLLM_CUDA_ARCHS="$ARCHS"
touch "$TMPD/build-stamp"
run build 330 "$OUT/build.log" cmake --build "$BUILD" --parallel "$JOBS" -- "${KEEP[@]}"
# The ptxas -v report lands in $BUILD/ptxas/<file>.cu.txt (cmake/ptxas-report.sh):
# into build.log with it, where the summary reads it.
for f in "$BUILD"/ptxas/*.txt; do
  [[ -f "$f" ]] && { echo "=== ptxas report: ${f#"$BUILD"/}"; cat "$f"; } >>"$OUT/build.log"
done
summarize

# ---- tests ---------------------------------------------------------------------------
# ctest's list (what CI runs), each test's own command and arguments (from
# `ctest --show-only=json-v1`: parity_test_cuda is `parity_test cuda`), run one
# by one for per-program counts, from the repository root as ctest does.
TEST_CMDS=()
if command -v python3 >/dev/null; then
  mapfile -t TEST_CMDS < <(timeout 30 ctest --test-dir "$BUILD" --show-only=json-v1 2>/dev/null | python3 -c '
import json, os, sys
try:
    tests = json.load(sys.stdin).get("tests", [])
except ValueError:
    tests = []
for t in tests:
    cmd = t.get("command") or []
    if cmd:
        print("\t".join([os.path.basename(cmd[0])] + cmd[1:]))
' 2>/dev/null)
fi
if ((${#TEST_CMDS[@]} == 0)); then  # no Python or no list: every *_test program, and the CUDA parity run
  mapfile -t TEST_CMDS < <(cd "$BUILD" 2>/dev/null && ls ./*_test 2>/dev/null | sed 's|^\./||')
  [[ -x "$BUILD/parity_test" && $CUDA_MODE != off ]] && TEST_CMDS+=("parity_test	cuda")
fi
run_test() {  # program [args...]
  local prog=$1
  shift
  local label="$prog${*:+ $*}" log="$TMPD/test-${prog}${1:+-$1}.log"
  : >"$log"
  if [[ ! -x "$BUILD/$prog" ]]; then
    printf '%s\t%s\tmissing\t-\t0\t%s\tno\n' "$prog" "$*" "$log" >>"$TESTS"
    echo "=== $label: missing (not built)" >>"$OUT/tests.log"
    return
  fi
  run "test $label" "${DEVICE_CHECK_TEST_CAP:-150}" "$log" "$BUILD/$prog" "$@"
  cat "$log" >>"$OUT/tests.log"
  # When the build failed, a binary older than this run's build may be a
  # leftover of an earlier one: the summary marks its results stale.
  local fresh=no
  [[ "$BUILD/$prog" -nt "$TMPD/build-stamp" ]] && fresh=yes
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$prog" "$*" "$ST" "$RC" "$SECS" "$log" "$fresh" >>"$TESTS"
  summarize
}
if skipped tests; then
  note tests "not run" "DEVICE_CHECK_SKIP"
else
  # The CUDA programs first: they are what this run is for.
  for pass in cuda other; do
    for line in "${TEST_CMDS[@]}"; do
      IFS=$'\t' read -r -a cmd <<<"$line"
      is_cuda=no
      [[ ${cmd[0]} == cuda_* || ${cmd[1]:-} == cuda ]] && is_cuda=yes
      [[ $cmd == cuda_attention_emu_test ]] && is_cuda=no
      if [[ ($pass == cuda && $is_cuda == yes) || ($pass == other && $is_cuda == no) ]]; then run_test "${cmd[@]}"; fi
    done
  done
fi

# ---- compute-sanitizer at small sizes, right after the tests --------------------------
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [[ $CUDA_MODE == off ]]; then
  note sanitizer "not run" "CPU-only dry run"
elif skipped sanitizer; then
  note sanitizer "not run" "DEVICE_CHECK_SKIP"
elif [[ -z $SANITIZER ]]; then
  note sanitizer "not run" "compute-sanitizer not found"
else
  for prog in cuda_ops_test cuda_attention_test cuda_gemm_test; do
    log="$TMPD/san-$prog.log"
    : >"$log"
    if [[ ! -x "$BUILD/$prog" ]]; then
      printf '%s\tmissing\t-\t0\t%s\n' "$prog" "$log" >>"$SAN"
      continue
    fi
    run "sanitizer $prog" 40 "$log" env FOCUSLLM_TEST_SMALL=1 "$SANITIZER" --tool memcheck --leak-check no \
      --error-exitcode 99 "$BUILD/$prog"
    cat "$log" >>"$OUT/sanitizer.log"
    printf '%s\t%s\t%s\t%s\t%s\n' "$prog" "$ST" "$RC" "$SECS" "$log" >>"$SAN"
    summarize
  done
  # Shared-memory races in the kernels with block-wide barriers and atomics.
  if [[ -x "$BUILD/cuda_ops_test" ]]; then
    log="$TMPD/san-racecheck.log"
    run "racecheck cuda_ops_test" 30 "$log" env FOCUSLLM_TEST_SMALL=1 FOCUSLLM_TEST_ONLY=rms_norm,argmax,sampling \
      "$SANITIZER" --tool racecheck --error-exitcode 99 "$BUILD/cuda_ops_test"
    cat "$log" >>"$OUT/sanitizer.log"
    printf '%s\t%s\t%s\t%s\t%s\n' "cuda_ops_test (racecheck)" "$ST" "$RC" "$SECS" "$log" >>"$SAN"
    summarize
  fi
fi

# ---- GPU benchmarks (JSON lines to bench.jsonl, the rest to bench.log) -----------------
# Only the GPU ones: the CPU benchmarks are measured on the development machine.
run_bench() {  # cap program [args...]
  local cap=$1 prog=$2
  shift 2
  if [[ ! -x "$BUILD/$prog" ]]; then
    printf '%s\tmissing\t-\t0\n' "$prog" >>"$BENCHES"
    return
  fi
  run "bench $prog" "$cap" "$TMPD/$prog.out" "$BUILD/$prog" "$@"
  grep -h '^{.*}$' "$TMPD/$prog.out" >>"$OUT/bench.jsonl"
  grep -hv '^{.*}$' "$TMPD/$prog.out" >>"$OUT/bench.log"
  printf '%s\t%s\t%s\t%s\n' "$prog" "$ST" "$RC" "$SECS" >>"$BENCHES"
  summarize
}
cat >"$TMPD/torch_roofline.py" <<'PY'
import json, sys
try:
    import torch
except Exception as e:  # no torch here: say so, do not fail
    print(json.dumps({"bench": "torch_roofline", "skipped": f"torch does not import: {e}"})); sys.exit(0)
if not torch.cuda.is_available():
    print(json.dumps({"bench": "torch_roofline", "skipped": "torch sees no CUDA device"})); sys.exit(0)
dev = torch.cuda.get_device_name(0)
def med(f, reps=10, warm=3):
    for _ in range(warm): f()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); f(); b.record(); b.synchronize(); ts.append(a.elapsed_time(b))
    return sorted(ts)[len(ts) // 2]
n = 8192
x = torch.rand(n, n, device="cuda", dtype=torch.bfloat16) * 2 - 1
w = torch.rand(n, n, device="cuda", dtype=torch.bfloat16) * 2 - 1
ms = med(lambda: torch.matmul(x, w.t()))
print(json.dumps({"bench": "torch_roofline", "device": dev, "what": "gemm_bf16", "impl": "torch.matmul",
                  "m": n, "n": n, "k": n, "ms": ms, "TFLOP_per_s": 2 * n**3 / (ms * 1e9), "torch": torch.__version__}))
del x, w
nbytes = 4 << 30
src = torch.randint(0, 255, (nbytes,), device="cuda", dtype=torch.uint8)
dst = torch.empty_like(src)
ms = med(lambda: dst.copy_(src))
print(json.dumps({"bench": "torch_roofline", "device": dev, "what": "dram_copy", "bytes": nbytes, "ms": ms,
                  "GB_per_s": 2 * nbytes / (ms * 1e6), "counted": "read + written"}))
PY
if skipped bench; then
  note bench "not run" "DEVICE_CHECK_SKIP"
else
  run_bench 45 bench_roofline
  # The end-to-end figures are the headline: right after the ceilings.
  # shellcheck disable=SC2086
  run_bench 150 bench_cuda_e2e --layers "$E2E_LAYERS" ${DEVICE_CHECK_E2E_ARGS:-}
  # PyTorch's numbers on the same card: a peer's bf16 GEMM and copy bandwidth.
  if [[ $CUDA_MODE != off ]] && command -v python3 >/dev/null; then
    run "bench torch_roofline" 45 "$TMPD/torch.out" env PYTHONUNBUFFERED=1 python3 "$TMPD/torch_roofline.py"
    grep -h '^{.*}$' "$TMPD/torch.out" >>"$OUT/bench.jsonl"
    grep -hv '^{.*}$' "$TMPD/torch.out" >>"$OUT/bench.log"
    printf '%s\t%s\t%s\t%s\n' torch_roofline "$ST" "$RC" "$SECS" >>"$BENCHES"
    summarize
  else
    note "bench torch_roofline" "not run" "CPU-only dry run or no python3"
  fi
  run_bench 60 bench_cuda_gemm
  run_bench 60 bench_cuda_attention
fi

# ---- sm_80 compile check (optional) ---------------------------------------------------
if [[ ${DEVICE_CHECK_SM80:-0} == 1 && $CUDA_MODE != off ]]; then
  run "configure sm80" 60 "$OUT/build.log" cmake -S "$ROOT" -B "$ROOT/build-device-sm80" "${GEN[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DFOCUSLLM_CUDA=on -DFOCUSLLM_CUDA_ARCHS=80
  run "build sm80 (engine only)" 240 "$OUT/build.log" cmake --build "$ROOT/build-device-sm80" --parallel "$JOBS" \
    --target focusllm_core
fi

# ---- summary ---------------------------------------------------------------------------
summarize final
# Keep each file under the 16 MiB the device tool brings back.
for f in "$OUT"/*; do
  size=$(stat -c %s "$f" 2>/dev/null || echo 0)
  if ((size > 15 * 1024 * 1024)); then
    { head -c $((2 * 1024 * 1024)) "$f"; echo; echo "... [truncated] ..."; tail -c $((12 * 1024 * 1024)) "$f"; } >"$f.cut"
    mv "$f.cut" "$f"
  fi
done
rm -rf "$TMPD"
exit 0
