#!/bin/sh
# Runs inside the web guest's network namespace; its output goes into the
# action log. TESTBEDOS_GUEST and TESTBEDOS_DEPLOYMENT say where it runs.
set -e
echo "hello from $TESTBEDOS_GUEST of deployment $TESTBEDOS_DEPLOYMENT"
ip -brief address show dev eth0
ip route
