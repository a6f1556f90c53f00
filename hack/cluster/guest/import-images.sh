#!/bin/bash
# import-images.sh IMAGE...: imports IMAGE_DIR/IMAGE.tar into containerd's k8s.io namespace with
# CTR (the ctr command and its address), all at once: unpacking is CPU-bound under emulation, and
# one import uses one vCPU. Each import logs to LOG_DIR/images-IMAGE.log. An import that fails is
# tried once more alone, its first log kept as images-IMAGE.log.1.
# Prints a "WARNING: ..." line for each import tried again, and exits 1 after a "FAILED: ..." line
# naming ctr's error when the second try fails too.
set -u
: "${CTR:?} ${IMAGE_DIR:?} ${LOG_DIR:?}"
lastline() { grep -v '^[[:space:]]*$' "$1" | tail -n 1; }
import() { $CTR -n k8s.io images import "$IMAGE_DIR/$1.tar" >"$LOG_DIR/images-$1.log" 2>&1; }
pids=()
for img in "$@"; do
  import "$img" &
  pids+=("$!:$img")
done
rc=0
for p in "${pids[@]}"; do
  wait "${p%%:*}" && continue
  img=${p#*:} log=$LOG_DIR/images-${p#*:}.log
  echo "WARNING: importing $IMAGE_DIR/$img.tar failed ($(lastline "$log")); trying once more alone"
  mv "$log" "$log.1"
  import "$img" && continue
  echo "FAILED: importing $IMAGE_DIR/$img.tar: $(lastline "$log") (logs/images-$img.log, the first try in logs/images-$img.log.1)"
  rc=1
done
exit $rc
