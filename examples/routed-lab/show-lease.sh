#!/bin/sh
# Runs inside laptop after its DHCP lease was taken (setup scripts come
# after the lease), so the leased address and route are already there.
set -e
echo "laptop leased $(ip -brief -4 address show dev eth0)"
ip route
