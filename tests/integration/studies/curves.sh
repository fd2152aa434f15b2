#!/bin/sh
# Learning-curve objective for t_studyfeat.sh: reads
# {"study":..,"trial":N,"params":{"x":X}} on stdin, reports X + (5-step)/10
# at steps 1..4 (0.3 s apart), then prints X. On SIGTERM (a pruned trial)
# it appends N to $1/terminated and exits; one that runs to the end
# appends N to $1/finished.
read -r line
x=$(echo "$line" | sed 's/.*"x":\([0-9]*\).*/\1/')
n=$(echo "$line" | sed 's/.*"trial":\([0-9]*\).*/\1/')
trap 'echo "$n" >>"$1/terminated"; exit 143' TERM
for step in 1 2 3 4; do
    echo "{\"report\": $x.$((5 - step)), \"step\": $step}"
    sleep 0.3 &
    wait $!
done
echo "$n" >>"$1/finished"
echo "$x"
