#!/bin/sh
# Test objective for t_studies.sh: reads {"params":{"mode":..,"x":..}} on
# stdin and behaves as the mode says.
read -r line
case "$line" in
*'"mode":"crash"'*) echo "exploding on purpose" >&2; exit 3 ;;
*'"mode":"hang"'*) exec sleep 600 ;;
*'"mode":"garbage"'*) echo "this is not a number"; exit 0 ;;
*'"mode":"signal"'*) kill -SEGV $$ ;;
esac
echo '{"report": 2.5, "step": 1}'
echo 1.25
