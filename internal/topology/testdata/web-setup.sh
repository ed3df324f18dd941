#!/bin/sh
# Runs inside the web guest after up.
set -eu
echo "web: addresses"
ip -brief address show
