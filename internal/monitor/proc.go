package monitor

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// userHZ is the unit of /proc/stat's times: USER_HZ is 100 on every Linux
// architecture Go runs on.
const userHZ = 100

// parseProcStat returns the CPU time spent busy, over all CPUs, from the
// first ("cpu") line of /proc/stat: everything but idle and iowait (guest
// time is part of user time already, so it is not added again).
func parseProcStat(r io.Reader) (busySeconds float64, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 5 {
			return 0, fmt.Errorf("/proc/stat: short cpu line %q", sc.Text())
		}
		var busy uint64
		// user nice system idle iowait irq softirq steal guest guest_nice
		for i, v := range f[1:] {
			if i >= 8 {
				break
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
			}
			if i == 3 || i == 4 {
				continue
			}
			busy += n
		}
		return float64(busy) / userHZ, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/stat: no cpu line")
}

// parseMeminfo returns the memory in use (MemTotal - MemAvailable) and the
// total, in bytes.
func parseMeminfo(r io.Reader) (used, total uint64, err error) {
	var avail uint64
	var haveTotal, haveAvail bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "MemTotal" && key != "MemAvailable") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, 0, fmt.Errorf("/proc/meminfo: %s has no value", key)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/meminfo: %s: %w", key, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		if key == "MemTotal" {
			total, haveTotal = n, true
		} else {
			avail, haveAvail = n, true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !haveTotal || !haveAvail {
		return 0, 0, fmt.Errorf("/proc/meminfo: MemTotal or MemAvailable missing")
	}
	if avail > total {
		avail = total
	}
	return total - avail, total, nil
}
