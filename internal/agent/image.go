package agent

import (
	"context"
	"fmt"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/images"
	"github.com/testbedos/testbedos/internal/topology"
)

// PushedImage is the cloud image a guest call's guest boots from, pushed
// to the client's cache first: the client keeps it as its own image of
// that name, so its driver never downloads it.
type PushedImage struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// pushImage resolves the cloud image of guest g in the main's image cache
// (downloading it there the first time), pushes it (nothing is sent when
// the client has it) and points the request's copy of the guest at it by
// name and sha256, with no URL to fetch.
func (p *proxyDriver) pushImage(ctx context.Context, req *GuestRequest, log actlog.Log) error {
	l := req.Guest.Libvirt
	if l == nil || l.Boot != topology.BootCloudImage || p.h.opts.Images == nil {
		return nil
	}
	logf := func(string, ...any) {}
	if log != nil {
		logf = log.Printf
	}
	e, err := p.h.opts.Images.Resolve(ctx, images.Source{Name: l.ImageName, URL: l.ImageURL, SHA256: l.ImageSHA256}, logf)
	if err != nil {
		return fmt.Errorf("guest %s: %w", req.Guest.Name, err)
	}
	// The blob is named by its sha256, checked when it was stored.
	hash := e.SHA256
	if _, err := p.h.pushHashed(ctx, p.h.opts.Images.BlobPath(hash), hash, e.Size, "image "+e.Name, log); err != nil {
		return fmt.Errorf("guest %s: %w", req.Guest.Name, err)
	}
	spec := *l
	spec.ImageName, spec.ImageURL, spec.ImageSHA256 = e.Name, "", hash
	req.Guest.Libvirt = &spec
	req.Image = &PushedImage{Name: e.Name, SHA256: hash}
	return nil
}

// adoptImage makes the pushed image of a guest call this host's image of
// its name.
func (s *server) adoptImage(ctx context.Context, img *PushedImage) error {
	if img == nil {
		return nil
	}
	if s.opts.Images == nil {
		return badRequest("image %s was pushed, but this host keeps no images", img.Name)
	}
	present, err := s.cache.has(img.SHA256)
	if err != nil || !present {
		return badRequest("image %s (sha256 %s) is not in this host's cache", img.Name, img.SHA256)
	}
	_, err = s.opts.Images.Adopt(ctx, img.Name, s.cache.path(img.SHA256), img.SHA256)
	return err
}
