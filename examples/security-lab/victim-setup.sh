#!/bin/sh
# Runs inside the victim's namespace after up.
set -e
echo "victim $TESTBEDOS_GUEST of $TESTBEDOS_DEPLOYMENT is up:"
ip -brief address show dev eth0
