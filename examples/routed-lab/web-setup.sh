#!/bin/sh
# Runs inside web: a static address with the router as its gateway.
set -e
echo "web on $(ip -brief -4 address show dev eth0)"
ip route
