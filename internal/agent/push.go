package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/guest"
)

// remoteFiles are a deployment's files as the engine hands them to a proxy
// driver: the project folder on the main, pushed to the client on demand.
type remoteFiles struct {
	h       *RemoteHost
	project string
}

var _ guest.Files = (*remoteFiles)(nil)

// Path implements guest.Files: it makes sure the file is on the client and
// returns where the client keeps it.
func (f *remoteFiles) Path(ctx context.Context, ref string) (string, error) {
	_, path, err := f.push(ctx, ref)
	return path, err
}

// WorkDir implements guest.Files. The working files of a client's guests
// live on the client (<data>/agent/work/<deployment>), out of the main's
// reach; on the main there is no such folder.
func (f *remoteFiles) WorkDir() string { return "" }

// push makes sure the file ref of the project folder is on the client,
// sending it only when the client has not got its content: it returns its
// sha256 and the client's path of it.
func (f *remoteFiles) push(ctx context.Context, ref string) (hash, remote string, err error) {
	local, err := guest.ProjectFiles{Project: f.project}.Path(ctx, ref)
	if err != nil {
		return "", "", err
	}
	hash, size, err := f.h.hashes.sum(local)
	if err != nil {
		return "", "", fmt.Errorf("file %s: %w", ref, err)
	}
	mu := f.h.pushLock(hash)
	mu.Lock()
	defer mu.Unlock()
	remote, present, err := f.h.hasFile(ctx, hash)
	if err != nil || present {
		return hash, remote, err
	}
	remote, err = f.h.putFile(ctx, hash, local, size)
	if err != nil {
		return "", "", fmt.Errorf("send %s: %w", ref, err)
	}
	return hash, remote, nil
}

func (h *RemoteHost) pushLock(hash string) *sync.Mutex {
	h.pushMu.Lock()
	defer h.pushMu.Unlock()
	mu := h.pushing[hash]
	if mu == nil {
		mu = &sync.Mutex{}
		h.pushing[hash] = mu
	}
	return mu
}

// hasFile asks the client whether it has the file of hash (HEAD).
func (h *RemoteHost) hasFile(ctx context.Context, hash string) (string, bool, error) {
	ctx, cancel := withTimeout(ctx, h.opts.Timeout)
	defer cancel()
	resp, err := h.request(ctx, http.MethodHead, "files/"+hash, nil, -1, nil)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Header.Get(pathHeader), true, nil
	case http.StatusNotFound:
		return "", false, nil
	}
	return "", false, h.answerError(resp)
}

// putFile sends the content of local as hash.
func (h *RemoteHost) putFile(ctx context.Context, hash, local string, size int64) (string, error) {
	ctx, cancel := withTimeout(ctx, h.opts.TransferTimeout)
	defer cancel()
	file, err := os.Open(local)
	if err != nil {
		return "", err
	}
	defer file.Close()
	resp, err := h.request(ctx, http.MethodPut, "files/"+hash, io.LimitReader(file, size), size,
		http.Header{"Content-Type": {"application/octet-stream"}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return "", h.answerError(resp)
	}
	return resp.Header.Get(pathHeader), nil
}

// hashCache remembers the sha256 of files by path, size and modification
// time, so a large image is hashed once, not at every up.
type hashCache struct {
	mu sync.Mutex
	m  map[string]hashEntry
}

type hashEntry struct {
	size  int64
	mtime time.Time
	hash  string
}

func (c *hashCache) sum(path string) (string, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	c.mu.Lock()
	e, ok := c.m[path]
	c.mu.Unlock()
	if ok && e.size == fi.Size() && e.mtime.Equal(fi.ModTime()) {
		return e.hash, e.size, nil
	}
	file, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer file.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, file)
	if err != nil {
		return "", 0, err
	}
	if n != fi.Size() {
		return "", 0, fmt.Errorf("%s changed while it was read", filepath.Base(path))
	}
	hash := hex.EncodeToString(sum.Sum(nil))
	c.mu.Lock()
	c.m[path] = hashEntry{size: n, mtime: fi.ModTime(), hash: hash}
	c.mu.Unlock()
	return hash, n, nil
}
