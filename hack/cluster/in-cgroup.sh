#!/bin/sh
# in-cgroup.sh CGROUP CMD...: move this process into CGROUP (e.g. /eup/a/sys) in every cgroup
# hierarchy where it exists, then exec CMD, so CMD and everything it forks stay there and make down
# can find them.
cg=$1; shift
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
  echo $$ >"/sys/fs/cgroup$cg/cgroup.procs"
else
  for h in /sys/fs/cgroup/*/; do
    [ -e "$h$cg/cgroup.procs" ] && echo $$ >"$h$cg/cgroup.procs"
  done
fi
exec "$@"
