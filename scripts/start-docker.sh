#!/bin/sh
# start-docker.sh: start containerd and dockerd by hand (no systemd) if they
# are not running, logging to /var/log/{containerd,dockerd}.log, then wait
# until dockerd answers on its socket.
#
# Idempotent. Exits non-zero if dockerd does not answer within
# ${DOCKER_WAIT_SECONDS:-60} seconds. Note: dockerd sets the iptables FORWARD
# policy to DROP; our bridges carry their own accept rules (internal/net/bridge).
set -eu

if [ "$(id -u)" -ne 0 ]; then
	echo "start-docker: must run as root" >&2
	exit 1
fi
for b in containerd dockerd; do
	if ! command -v "$b" >/dev/null 2>&1; then
		echo "start-docker: $b not found; run scripts/install-test-deps.sh" >&2
		exit 1
	fi
done

sock=/var/run/docker.sock
running() {
	# pidof matches the exact program name, not command lines.
	pidof "$1" >/dev/null 2>&1
}
answers() {
	# The API's ping, without needing a docker client of a given version.
	curl -fsS --max-time 2 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
}

if running dockerd && answers; then
	echo "start-docker: dockerd is answering"
	exit 0
fi

if ! running containerd; then
	echo "start-docker: starting containerd (log /var/log/containerd.log)"
	mkdir -p /run/containerd
	setsid nohup containerd >>/var/log/containerd.log 2>&1 </dev/null &
	i=0
	while [ ! -S /run/containerd/containerd.sock ] && [ "$i" -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
fi
if ! running dockerd; then
	echo "start-docker: starting dockerd (log /var/log/dockerd.log)"
	setsid nohup dockerd --containerd=/run/containerd/containerd.sock \
		>>/var/log/dockerd.log 2>&1 </dev/null &
fi

wait_s=${DOCKER_WAIT_SECONDS:-60}
i=0
while [ "$i" -lt $((wait_s * 5)) ]; do
	if answers; then
		echo "start-docker: dockerd is answering"
		exit 0
	fi
	sleep 0.2
	i=$((i + 1))
done
echo "start-docker: dockerd did not answer within ${wait_s}s; tail of /var/log/dockerd.log:" >&2
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
