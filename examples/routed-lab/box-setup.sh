#!/bin/sh
# Runs inside the box container (through dockerd's exec API) after up: its
# output lands in the up log, each line prefixed with [box].
set -e
echo "box ($ROLE) on $(ip -o -4 address show dev eth0 | awk '{print $4}')"
ping -c1 -W5 10.0.1.1 >/dev/null && echo "box reaches r1 on sw1"
