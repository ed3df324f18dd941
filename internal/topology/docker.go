package topology

import (
	"fmt"
	"path"
	"strings"
)

// checkDocker checks a docker section's values; dp is its field path. Files
// (env_file, volume sources, setup_script) are checked by Validate.
func checkDocker(ps *problems, dp string, d *DockerSection) {
	if d.Image == "" {
		ps.addf(dp+".image", "is required")
	} else if strings.ContainsAny(d.Image, " \t\n") {
		ps.addf(dp+".image", "%q is not an image reference (it holds white space)", d.Image)
	}
	for k := range d.Environment {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			ps.addf(dp+".environment", "%q is not a variable name", k)
		}
	}
	for j, v := range d.Volumes {
		vp := fmt.Sprintf("%s.volumes[%d]", dp, j)
		if v.Source == "" {
			ps.addf(vp+".source", "is required")
		}
		switch {
		case v.Target == "":
			ps.addf(vp+".target", "is required")
		case !path.IsAbs(v.Target):
			ps.addf(vp+".target", "%s must be an absolute path inside the container", v.Target)
		}
	}
	for j, dev := range d.Device {
		if _, err := ParseDevice(dev); err != nil {
			ps.addf(fmt.Sprintf("%s.device[%d]", dp, j), "%v", err)
		}
	}
}

// ParseDevice reads a device entry: /dev/x, /dev/x:/dev/y or
// /dev/x:/dev/y:rwm, as docker run --device does.
func ParseDevice(s string) (DeviceSpec, error) {
	parts := strings.Split(s, ":")
	d := DeviceSpec{Host: parts[0], Permissions: "rwm"}
	switch len(parts) {
	case 1:
		d.Container = d.Host
	case 2:
		d.Container = parts[1]
	case 3:
		d.Container, d.Permissions = parts[1], parts[2]
	default:
		return d, fmt.Errorf("%q is not /dev/x, /dev/x:/dev/y or /dev/x:/dev/y:rwm", s)
	}
	if !path.IsAbs(d.Host) || !path.IsAbs(d.Container) {
		return d, fmt.Errorf("%q: both device paths must be absolute", s)
	}
	if d.Permissions == "" || strings.Trim(d.Permissions, "rwm") != "" {
		return d, fmt.Errorf("%q: permissions %q must be letters of rwm", s, d.Permissions)
	}
	return d, nil
}

// resolveDocker is the DockerSpec of section d for container name;
// file maps a field below mp to its resolved path.
func resolveDocker(d *DockerSection, name, mp string, file func(field, path string) string) *DockerSpec {
	spec := &DockerSpec{
		Container:   name,
		Image:       d.Image,
		Pull:        d.Pull,
		Command:     d.Command,
		Entrypoint:  d.Entrypoint,
		Environment: d.Environment,
		Privileged:  d.Privileged,
		User:        d.User,
	}
	if d.Entrypoint != nil && len(d.Entrypoint) == 0 {
		spec.ResetEntrypoint = true
	}
	if d.EnvFile != "" {
		spec.EnvFile = file("docker.env_file", d.EnvFile)
	}
	for j, v := range d.Volumes {
		spec.Volumes = append(spec.Volumes, VolumeSpec{
			Source:   file(fmt.Sprintf("docker.volumes[%d].source", j), v.Source),
			Target:   v.Target,
			ReadOnly: v.ReadOnly,
		})
	}
	for _, dev := range d.Device {
		if ds, err := ParseDevice(dev); err == nil {
			spec.Devices = append(spec.Devices, ds)
		}
	}
	return spec
}
