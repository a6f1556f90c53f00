#!/bin/bash
# exec-one.sh: one connection of the guest's exec endpoint (node.sh): read one line, run it as a
# shell command, send its output (stdout and stderr) and then "exit-status=N".
IFS= read -r cmd
bash -c "$cmd" 2>&1 </dev/null
echo "exit-status=$?"
