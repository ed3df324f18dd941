package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// maxRequest bounds the body of a guest call (an exec's stdin, in
// base64, included).
const maxRequest = 2 << 20

// guestCall serves POST /api/agent/guests/{exists,find,create,destroy,script,stop,start,exec}:
// the request is checked before the stream starts (a bad one is a 4xx),
// then the driver's log lines and the outcome are streamed as NDJSON.
func (s *server) guestCall(w http.ResponseWriter, r *http.Request) error {
	op := r.PathValue("op")
	switch op {
	case "exists", "find", "create", "destroy", "script", "stop", "start", "exec":
	default:
		return &httpError{status: http.StatusNotFound, err: fmt.Errorf("no guest operation %q", op)}
	}
	var req GuestRequest
	if err := decodeRequest(w, r, "guest request", &req); err != nil {
		return err
	}
	if !api.ValidName(req.Deployment) {
		return badRequest("invalid deployment name %q", req.Deployment)
	}
	if req.Guest.Name == "" {
		return badRequest("guest request names no guest")
	}
	if op == "script" && req.Script == "" {
		return badRequest("script request names no script")
	}
	if op == "exec" && len(req.Argv) == 0 {
		return badRequest("exec request names no command")
	}
	if s.opts.Drivers == nil {
		return &httpError{status: http.StatusNotImplemented, err: errors.New("this host has no guest drivers")}
	}
	drv, err := s.opts.Drivers.Driver(req.Guest.Kind)
	if err != nil {
		return &httpError{status: http.StatusNotImplemented, err: err}
	}
	g, err := s.localGuest(req)
	if err != nil {
		return err
	}
	dep := s.deployment(req.Deployment, req.Files)
	if len(req.Volumes) > 0 {
		dep.Files = volumeFiles{cachedFiles: dep.Files.(cachedFiles), guest: g.Name, volumes: req.Volumes}
	}
	return s.streamTo(w, r, func(ctx context.Context, sw *streamWriter) (StreamLine, error) {
		log := &streamLog{sw: sw}
		switch op {
		case "exec":
			return execute(ctx, drv, dep, g, req, sw)
		case "exists":
			ok, err := drv.Exists(ctx, dep, g)
			return StreamLine{Exists: ok}, err
		case "find":
			f, err := guest.Find(ctx, drv, dep, g)
			return StreamLine{Found: &f}, err
		case "create":
			return s.create(ctx, drv, dep, req, g, log)
		case "stop", "start":
			return power(ctx, drv, dep, g, op, log)
		case "destroy":
			return StreamLine{}, s.destroy(ctx, drv, dep, g, log)
		default:
			return StreamLine{}, drv.RunScript(ctx, dep, g, req.Script, log)
		}
	})
}

func (s *server) create(ctx context.Context, drv guest.Driver, dep guest.Deployment, req GuestRequest, g *topology.Guest, log actlog.Log) (StreamLine, error) {
	// Recorded before it is made, as the main's engine does: a crash in
	// between leaves a pending entry that clean removes.
	if err := s.installArtefacts(req.Deployment, req.Artefacts); err != nil {
		return StreamLine{}, err
	}
	if err := s.adoptImage(ctx, req.Image); err != nil {
		return StreamLine{}, err
	}
	if err := s.rec.guestStarting(req.Deployment, req.Guest, req.Files); err != nil {
		return StreamLine{}, err
	}
	created, err := drv.Create(ctx, dep, g, log)
	if rerr := s.rec.guestDone(req.Deployment, req.Guest, req.Files, err == nil && created); rerr != nil && err == nil {
		err = rerr
	}
	return StreamLine{Created: created}, err
}

// deployment is the deployment as this host's drivers see it: with the
// ovn backend this host's network binds guests' ports to their logical
// ports on its own chassis (guest.PortBinder).
func (s *server) deployment(name string, files map[string]string) guest.Deployment {
	ports, _ := s.opts.Network.(guest.PortBinder)
	return guest.Deployment{Name: name, Ports: ports, Files: cachedFiles{
		cache: s.cache,
		refs:  files,
		work:  s.workDir(name),
	}}
}

// workDir is the working folder of deployment name's guests on this host,
// <data>/agent/work/<name>: their artefacts and volume copies,
// out of the main's reach.
func (s *server) workDir(name string) string {
	return filepath.Join(s.opts.DataDir, "agent", "work", name)
}

// localGuest is the guest with the paths of the main's project folder its
// spec names replaced by the cached copies here. A cached disk is never
// written: the guest's disk is a linked clone over it (or a full copy).
func (s *server) localGuest(req GuestRequest) (*topology.Guest, error) {
	g := req.Guest
	if g.Libvirt == nil {
		return &g, nil
	}
	spec := *g.Libvirt
	g.Libvirt = &spec
	files := cachedFiles{cache: s.cache, refs: req.Files}
	for _, p := range []*string{&spec.DiskPath, &spec.ISOPath, &spec.Kernel, &spec.Initrd} {
		if *p == "" || req.Files[*p] == "" {
			continue
		}
		local, err := files.Path(context.Background(), *p)
		if err != nil {
			return nil, badRequest("guest %s: %v", g.Name, err)
		}
		*p = local
	}
	return &g, nil
}

// clean serves POST /api/agent/deployed/{deployment}/clean: destroy every
// guest the record holds, then undo what was done to bridges no other
// deployment's guests use. It carries on past errors.
func (s *server) clean(w http.ResponseWriter, r *http.Request) error {
	name, err := deploymentName(r)
	if err != nil {
		return err
	}
	return s.stream(w, r, func(ctx context.Context, log actlog.Log) (StreamLine, error) {
		d, err := s.rec.deployed(name)
		if err != nil {
			return StreamLine{}, err
		}
		var errs []error
		for _, gname := range sortedKeys(d.Guests) {
			dg := d.Guests[gname]
			if err := s.destroyRecorded(ctx, name, dg, log); err != nil {
				errs = append(errs, fmt.Errorf("guest %s: %w", gname, err))
				continue
			}
			log.Printf("guest %s: removed", gname)
		}
		if len(errs) > 0 {
			return StreamLine{}, errors.Join(errs...)
		}
		shared, err := s.rec.sharedBridges(name)
		if err != nil {
			return StreamLine{}, err
		}
		for _, b := range sortedKeys(d.Bridges) {
			if shared[b] {
				continue
			}
			if err := s.cleanBridge(ctx, b, d.Bridges[b]); err != nil {
				errs = append(errs, fmt.Errorf("bridge %s: %w", b, err))
				continue
			}
			log.Printf("bridge %s: cleaned", b)
		}
		// Bridges with nothing recorded about them (there before) are
		// forgotten along with the deployment.
		if err := s.rec.editDeployment(name, func(f *deploymentFile) {
			if len(f.Guests) == 0 && len(errs) == 0 {
				f.Bridges = nil
			}
		}); err != nil {
			errs = append(errs, err)
		}
		return StreamLine{}, errors.Join(errs...)
	})
}

func (s *server) destroyRecorded(ctx context.Context, deployment string, dg DeployedGuest, log actlog.Log) error {
	drv, err := s.opts.Drivers.Driver(dg.Guest.Kind)
	if err != nil {
		return err
	}
	g, err := s.localGuest(GuestRequest{Deployment: deployment, Guest: dg.Guest, Files: dg.Files})
	if err != nil {
		return err
	}
	return s.destroy(ctx, drv, s.deployment(deployment, dg.Files), g, log)
}

// destroy removes a guest, the copies of its volume sources, its ports on
// this host's network when that binds them (on a client of an ovn main
// the switches' rows are the main's, and nothing else removes them here)
// and its record.
func (s *server) destroy(ctx context.Context, drv guest.Driver, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	if err := drv.Destroy(ctx, dep, g, log); err != nil {
		return err
	}
	if err := removeVolumes(dep.Files.WorkDir(), g.Name); err != nil {
		return err
	}
	if u, ok := s.opts.Network.(engine.PortUnbinder); ok {
		if err := u.UnbindPorts(ctx, g.Interfaces); err != nil {
			return err
		}
	}
	if err := s.rec.linksGone(g); err != nil {
		return err
	}
	return s.rec.guestGone(dep.Name, g.Name)
}

func (s *server) cleanBridge(ctx context.Context, name string, b DeployedBridge) error {
	if err := s.cleanTunnels(ctx, b); err != nil {
		return err
	}
	if b.Firewall {
		if err := s.opts.Network.RemoveBridge(ctx, name); err != nil {
			return err
		}
	}
	if b.Made {
		if err := s.opts.Network.DeleteBridge(ctx, name); err != nil {
			return err
		}
	}
	return s.rec.bridgeGone(name)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
