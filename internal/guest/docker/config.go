package docker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// maxEnvFile bounds an env_file: it is read whole into the container's
// configuration.
const maxEnvFile = 1 << 20

// ErrNoMounts: the host's deployment files cannot be bind-mounted (files
// that are not guest.MountFiles: on a client host, a request that carried
// no volume sources).
var ErrNoMounts = errors.New("volumes are not available on this host")

// containerConfig is the container of guest g: no network of Docker's own,
// the state's settings, and labels naming the deployment and guest.
// Volume sources are opened once, beneath the project folder, and pin
// turns each open source into the path docker is given.
func containerConfig(ctx context.Context, dep guest.Deployment, g *topology.Guest, s *topology.DockerSpec, pin func(n int, f *os.File) (string, error)) (*container.Config, *container.HostConfig, error) {
	env := map[string]string{}
	if s.EnvFile != "" {
		if err := readEnvFile(ctx, dep.Files, s.EnvFile, env); err != nil {
			return nil, nil, err
		}
	}
	for k, v := range s.Environment {
		env[k] = v
	}
	cfg := &container.Config{
		Image:    s.Image,
		Hostname: g.Name,
		User:     s.User,
		Env:      sortedEnv(env),
		Cmd:      s.Command,
		Labels:   map[string]string{LabelDeployment: dep.Name, LabelGuest: g.Name},
	}
	switch {
	case s.ResetEntrypoint:
		// As docker run --entrypoint "": no entrypoint, the command alone.
		cfg.Entrypoint = []string{""}
	case len(s.Entrypoint) > 0:
		cfg.Entrypoint = s.Entrypoint
	}
	host := &container.HostConfig{
		NetworkMode: "none",
		Privileged:  s.Privileged,
		ExtraHosts:  s.ExtraHosts,
	}
	for _, dev := range s.Devices {
		host.Devices = append(host.Devices, container.DeviceMapping{
			PathOnHost: dev.Host, PathInContainer: dev.Container, CgroupPermissions: dev.Permissions,
		})
	}
	if len(s.Volumes) > 0 {
		mf, ok := dep.Files.(guest.MountFiles)
		if !ok {
			return nil, nil, fmt.Errorf("%w: the volume sources were not sent here", ErrNoMounts)
		}
		for n, v := range s.Volumes {
			f, err := mf.OpenMount(ctx, v.Source)
			if err != nil {
				return nil, nil, fmt.Errorf("volume %s: %w", v.Target, err)
			}
			src, err := pin(n, f)
			f.Close()
			if err != nil {
				return nil, nil, fmt.Errorf("volume %s: %w", v.Target, err)
			}
			host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: src, Target: v.Target, ReadOnly: v.ReadOnly})
		}
	}
	return cfg, host, nil
}

// readEnvFile reads the env_file ref of files, at most maxEnvFile bytes,
// into env (see parseEnvFile).
func readEnvFile(ctx context.Context, files guest.Files, ref string, env map[string]string) error {
	data, _, err := guest.ReadFile(ctx, files, ref, maxEnvFile)
	if err != nil {
		return fmt.Errorf("env_file: %w", err)
	}
	return parseEnvFile(ref, data, env)
}

// parseEnvFile adds the KEY=value lines of the env_file path (data) to
// env, as docker run --env-file reads them: blank lines and lines starting
// with # are skipped. A KEY alone, which docker run fills from its own
// environment, is skipped too: the server's environment is not the guest's
// business.
func parseEnvFile(path string, data []byte, env map[string]string) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), maxEnvFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("env_file %s:%d: %q is not KEY=value", path, n, line)
		}
		if ok {
			env[k] = v
		}
	}
	return sc.Err()
}
