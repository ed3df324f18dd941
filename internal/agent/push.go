package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
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
	_, path, err := f.push(ctx, ref, nil)
	return path, err
}

// WorkDir implements guest.Files. The working files of a client's guests
// live on the client (<data>/agent/work/<deployment>), out of the main's
// reach; on the main there is no such folder.
func (f *remoteFiles) WorkDir() string { return "" }

// push makes sure the file ref of the project folder is on the client,
// sending it only when the client has not got its content: it returns its
// sha256 and the client's path of it.
func (f *remoteFiles) push(ctx context.Context, ref string, log actlog.Log) (hash, remote string, err error) {
	local, err := guest.ProjectFiles{Project: f.project}.Path(ctx, ref)
	if err != nil {
		return "", "", err
	}
	name := ref
	if rel, err := filepath.Rel(f.project, local); err == nil && filepath.IsLocal(rel) {
		name = rel
	}
	return f.h.pushLocal(ctx, local, name, log)
}

// pushLocal makes sure the content of the file local (called name in the
// log) is on the client: nothing is sent when the client has it, the rest
// when a broken upload left part of it. It returns its sha256 and the
// client's path of it.
func (h *RemoteHost) pushLocal(ctx context.Context, local, name string, log actlog.Log) (hash, remote string, err error) {
	hash, size, err := h.hashes.sum(local)
	if err != nil {
		return "", "", fmt.Errorf("file %s: %w", name, err)
	}
	remote, err = h.pushHashed(ctx, local, hash, size, name, log)
	return hash, remote, err
}

// pushHashed is pushLocal of a file whose sha256 is known (a blob of the
// image cache, named by it): it is not read to hash it again.
func (h *RemoteHost) pushHashed(ctx context.Context, local, hash string, size int64, name string, log actlog.Log) (remote string, err error) {
	mu := h.pushLock(hash)
	mu.Lock()
	defer mu.Unlock()
	st, err := h.fileState(ctx, hash)
	if err != nil {
		return "", err
	}
	if st.present {
		if size >= quietBelow {
			printf(log, "    file %s: already on host %s (sha256 %s): not sent", name, h.Name(), hash[:12])
		}
		return st.path, nil
	}
	up := &upload{h: h, hash: hash, local: local, size: size, offset: st.received,
		progress: newProgress(log, fmt.Sprintf("file %s to host %s", name, h.Name()), size)}
	remote, err = up.send(ctx)
	if err != nil {
		return "", fmt.Errorf("send %s: %w", name, err)
	}
	return remote, nil
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

// fileState is what the client has of a file.
type fileState struct {
	present  bool
	path     string // where the client keeps it, when present
	received int64  // else: the bytes a broken upload left
}

// fileState asks the client what it has of the file of hash (HEAD).
func (h *RemoteHost) fileState(ctx context.Context, hash string) (fileState, error) {
	ctx, cancel := withTimeout(ctx, h.opts.Timeout)
	defer cancel()
	resp, err := h.request(ctx, http.MethodHead, "files/"+hash, nil, -1, nil)
	if err != nil {
		return fileState{}, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return fileState{present: true, path: resp.Header.Get(pathHeader)}, nil
	case http.StatusNotFound:
		n, _ := strconv.ParseInt(resp.Header.Get(receivedHeader), 10, 64)
		return fileState{received: max(n, 0)}, nil
	}
	return fileState{}, h.answerError(resp)
}

// maxStalls is how many uploads in a row may break without moving the
// file on before the push fails.
const maxStalls = 4

// upload is one file on its way to the client.
type upload struct {
	h           *RemoteHost
	hash, local string
	size        int64
	offset      int64 // where the next PUT starts
	progress    *progress
}

// send PUTs the file from offset on; when the transfer breaks it asks the
// client how much arrived and sends the rest, until the file is there or
// maxStalls attempts in a row moved it no further.
func (u *upload) send(ctx context.Context) (string, error) {
	u.progress.start(u.offset)
	stalls := 0
	for {
		remote, err := u.put(ctx)
		if err == nil {
			u.progress.done()
			return remote, nil
		}
		if ctx.Err() != nil || !(errors.Is(err, ErrUnreachable) || errors.Is(err, errUploadBusy) || errors.Is(err, errOffsetRemote)) {
			return "", err
		}
		if errors.Is(err, errUploadBusy) {
			if werr := sleepCtx(ctx, time.Duration(stalls+1)*500*time.Millisecond); werr != nil {
				return "", err
			}
		}
		st, serr := u.h.fileState(ctx, u.hash)
		if serr != nil {
			return "", errors.Join(err, serr)
		}
		if st.present {
			u.progress.done()
			return st.path, nil
		}
		if st.received > u.offset {
			stalls = 0
		} else if stalls++; stalls >= maxStalls {
			return "", fmt.Errorf("%d attempts in a row moved it no further than %d bytes: %w", maxStalls, st.received, err)
		}
		u.progress.resumed(st.received, err)
		u.offset = st.received
	}
}

// put sends the file from u.offset to its end.
func (u *upload) put(ctx context.Context) (string, error) {
	ctx, cancel := withTimeout(ctx, u.h.opts.TransferTimeout)
	defer cancel()
	file, err := os.Open(u.local)
	if err != nil {
		return "", err
	}
	defer file.Close()
	if _, err := file.Seek(u.offset, io.SeekStart); err != nil {
		return "", err
	}
	// The client answers a busy or misplaced upload before the body goes.
	header := http.Header{"Content-Type": {"application/octet-stream"}, "Expect": {"100-continue"}}
	if u.offset > 0 {
		header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", u.offset, u.size-1, u.size))
	}
	// The file itself is the body: the transport sends it with sendfile
	// where it can.
	stop := u.progress.follow(file, u.offset)
	resp, err := u.h.request(ctx, http.MethodPut, "files/"+u.hash, file, u.size-u.offset, header)
	stop()
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict && resp.Header.Get(receivedHeader) != "" {
		return "", fmt.Errorf("%w: %w", errOffsetRemote, u.h.answerError(resp))
	}
	if resp.StatusCode >= 300 {
		return "", u.h.answerError(resp)
	}
	return resp.Header.Get(pathHeader), nil
}

// errOffsetRemote: the client holds another part of the file than the
// upload assumed; the main asks again and resumes from there.
var errOffsetRemote = errors.New("the client holds another part of the file")

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func printf(log actlog.Log, format string, args ...any) {
	if log != nil {
		log.Printf(format, args...)
	}
}

// Hashes remembers the sha256 of files by path, size and modification
// time, so a large image is hashed once, not at every up nor for every
// client host: the main's RemoteHosts share one.
type Hashes struct {
	mu sync.Mutex
	m  map[string]hashEntry
}

type hashEntry struct {
	size  int64
	mtime time.Time
	hash  string
}

// NewHashes returns an empty cache of hashes.
func NewHashes() *Hashes { return &Hashes{m: map[string]hashEntry{}} }

func (c *Hashes) sum(path string) (string, int64, error) {
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
