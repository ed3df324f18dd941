package docker

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/testbedos/testbedos/internal/guest"
)

// A stopped container in a guest's place that another deployment, or the
// same deployment name on another server, made is not a remnant of ours:
// Find calls it foreign, Create refuses it naming it, Destroy leaves it.
func TestForeignContainerIsLeftAlone(t *testing.T) {
	l := newLab(t, `
machines:
  - name: c
    network: [{switch: sw0, ip: 10.82.0.10}]
    docker: {image: IMAGE, command: [sleep, infinity], entrypoint: []}
network:
  switches:
    sw0: {subnet: 10.82.0.0/24}
`, nil)
	drv, err := New(Options{Instance: "this-server"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	ctx := context.Background()
	c := l.guest("c")
	for _, tt := range []struct {
		name   string
		labels map[string]string
		says   string
	}{
		{"another owner", map[string]string{"owner": "someone", LabelDeployment: "other"}, "not labelled as guest c"},
		{"another server", map[string]string{LabelDeployment: l.dep.Name, LabelGuest: "c", LabelServer: "other-server"}, "of another server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: c.Docker.Container, Config: &container.Config{
				Image: l.image, Cmd: []string{"sleep", "infinity"}, Entrypoint: []string{""}, Labels: tt.labels,
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.cli.ContainerRemove(ctx, c.Docker.Container, client.ContainerRemoveOptions{Force: true})
			f, err := drv.Find(ctx, l.dep, c)
			if err != nil || f.Presence != guest.Foreign || !strings.Contains(f.What, tt.says) {
				t.Fatalf("Find = %+v, %v; want foreign, saying %q", f, err, tt.says)
			}
			if _, err := drv.Create(ctx, l.dep, c, l.log); !errors.Is(err, guest.ErrForeign) || !strings.Contains(err.Error(), c.Docker.Container) {
				t.Fatalf("Create over a foreign container = %v, want ErrForeign naming it", err)
			}
			if err := drv.Destroy(ctx, l.dep, c, l.log); err != nil {
				t.Fatal(err)
			}
			res, err := l.cli.ContainerInspect(ctx, c.Docker.Container, client.ContainerInspectOptions{})
			if err != nil || res.Container.Config.Labels[LabelDeployment] != tt.labels[LabelDeployment] {
				t.Fatalf("the foreign container is gone or replaced (%v)", err)
			}
		})
	}
	// What this server makes is its own.
	if _, err := drv.Create(ctx, l.dep, c, l.log); err != nil {
		t.Fatal(err)
	}
	if f, err := drv.Find(ctx, l.dep, c); err != nil || f.Presence != guest.Ours {
		t.Fatalf("Find of our own container = %+v, %v", f, err)
	}
	if err := drv.Destroy(ctx, l.dep, c, l.log); err != nil {
		t.Fatal(err)
	}
}
