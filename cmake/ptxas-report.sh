#!/bin/sh
# CUDA compiler launcher (CMakeLists.txt): runs the nvcc command that follows
# the report folder, and moves ptxas's per-kernel report (-Xptxas=-v:
# registers, spills, stack frame) off the console into <folder>/<object>.txt.
# Everything else nvcc prints, and its exit status, pass through.
dir=$1
shift
out=
prev=
for a in "$@"; do
  [ "$prev" = "-o" ] && out=$a
  prev=$a
done
log=$(mktemp 2>/dev/null) || exec "$@"
"$@" 2>"$log"
rc=$?
pattern='^ptxas info|^ +[0-9]+ bytes stack frame'
if [ -n "$out" ] && mkdir -p "$dir" 2>/dev/null; then
  grep -E "$pattern" "$log" >"$dir/$(basename "$out" .o).txt"
  grep -vE "$pattern" "$log" >&2
else
  cat "$log" >&2
fi
rm -f "$log"
exit $rc
