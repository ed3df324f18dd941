package docker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Stats implements guest.Statser with one sample of dockerd's stats of the
// container (its cgroup, as docker stats shows it).
func (d *Driver) Stats(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Stats, error) {
	s, err := spec(g)
	if err != nil {
		return guest.Stats{}, err
	}
	res, err := d.cli.ContainerStats(ctx, s.Container, client.ContainerStatsOptions{})
	if err != nil {
		return guest.Stats{}, fmt.Errorf("stats of container %s: %w", s.Container, d.daemonErr(err))
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return guest.Stats{}, fmt.Errorf("stats of container %s: %w", s.Container, err)
	}
	return statsOf(&st), nil
}

// statsOf turns dockerd's answer into a guest's use: CPU time in seconds,
// and memory in use less the inactive page cache, as docker stats counts
// it (the key is total_inactive_file on cgroup v1, inactive_file on v2).
func statsOf(st *container.StatsResponse) guest.Stats {
	mem := st.MemoryStats.Usage
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := st.MemoryStats.Stats[k]; ok && v <= mem {
			mem -= v
			break
		}
	}
	return guest.Stats{
		CPUSeconds:  float64(st.CPUStats.CPUUsage.TotalUsage) / 1e9,
		MemoryBytes: mem,
	}
}

// NetnsPath is the network namespace of the guest's container, for the
// engine's DHCP client (guest.NetnsPather).
func (d *Driver) NetnsPath(ctx context.Context, g *topology.Guest) (string, error) {
	s, err := spec(g)
	if err != nil {
		return "", err
	}
	pid, err := d.pid(ctx, s.Container)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("/proc/%d/ns/net", pid), nil
}
