package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Source is what a guest asks for: a name, a URL, or both, and optionally
// the sha256 the content must have.
type Source struct {
	Name   string
	URL    string
	SHA256 string
}

// NameFor is the name an image fetched from rawURL is kept under when the
// YAML gives none: the URL's file name without its extension.
func NameFor(rawURL string) string {
	base := ""
	if u, err := url.Parse(rawURL); err == nil {
		base = path.Base(u.Path)
	}
	for _, ext := range []string{".xz", ".gz", ".qcow2", ".img", ".raw"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, strings.TrimLeft(base, "."))
	if base == "" || base == "_" {
		sum := sha256.Sum256([]byte(rawURL))
		base = "image-" + hex.EncodeToString(sum[:4])
	}
	return base
}

// headTimeout bounds the check whether the upstream file changed.
const headTimeout = 15 * time.Second

// Resolve returns the image src asks for, from the cache when it holds
// it and the upstream file has not changed since (ETag, Last-Modified or
// length, whichever the server sends), else downloaded, resuming a partial
// download. An unreachable upstream keeps the cached copy. logf reports
// what happens (the action's log).
func (s *Store) Resolve(ctx context.Context, src Source, logf func(string, ...any)) (Entry, error) {
	name := src.Name
	if name == "" {
		name = NameFor(src.URL)
	}
	if !ValidName(name) {
		return Entry{}, fmt.Errorf("%w: %q", ErrName, name)
	}
	want := strings.ToLower(src.SHA256)
	unlock := s.lockName(name)
	defer unlock()
	e, ok, err := s.Entry(name)
	if err != nil {
		return Entry{}, err
	}
	if ok {
		refetch, why := s.stale(ctx, e, src, want)
		if !refetch {
			return e, nil
		}
		if src.URL == "" {
			return Entry{}, fmt.Errorf("%w: image %s: %s", ErrDigest, name, why)
		}
		logf("    image %s: %s: downloading it again", name, why)
	} else if legacy := s.legacyPath(name); legacy != "" {
		if e, err := s.takeLegacy(ctx, name, legacy, want); err == nil {
			logf("    image %s: taken from %s (sha256 %s)", name, legacy, e.SHA256[:12])
			return e, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return Entry{}, err
		}
	}
	if src.URL == "" {
		return Entry{}, fmt.Errorf("%w: %s: %s", ErrUnknown, name, s.remedy(name))
	}
	return s.download(ctx, name, src.URL, want, logf)
}

// stale says whether a cached entry must be fetched again, and why.
func (s *Store) stale(ctx context.Context, e Entry, src Source, want string) (bool, string) {
	if want != "" && e.SHA256 != want {
		return true, fmt.Sprintf("the cached copy has sha256 %s, the YAML wants %s", e.SHA256, want)
	}
	if src.URL == "" || e.URL == "" {
		return false, "" // imported: the user's copy wins
	}
	if e.URL != src.URL {
		return true, "it was fetched from " + e.URL + ", now " + src.URL
	}
	changed, why, err := upstreamChanged(ctx, e)
	if err != nil || !changed {
		return false, ""
	}
	return true, "the file at " + e.URL + " changed (" + why + ")"
}

// upstreamChanged asks the server (HEAD) whether the file changed since e
// was fetched.
func upstreamChanged(ctx context.Context, e Entry) (bool, string, error) {
	ctx, cancel := context.WithTimeout(ctx, headTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, e.URL, nil)
	if err != nil {
		return false, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, "", fmt.Errorf("HEAD %s: %s", e.URL, resp.Status)
	}
	if et := resp.Header.Get("ETag"); et != "" && e.ETag != "" {
		return et != e.ETag, "ETag " + e.ETag + " → " + et, nil
	}
	if lm := resp.Header.Get("Last-Modified"); lm != "" && e.LastModified != "" && lm != e.LastModified {
		return true, "Last-Modified " + e.LastModified + " → " + lm, nil
	}
	if resp.ContentLength >= 0 && resp.ContentLength != e.Size {
		return true, fmt.Sprintf("length %d → %d", e.Size, resp.ContentLength), nil
	}
	return false, "", nil
}

func (s *Store) legacyPath(name string) string {
	if s.opts.Legacy == "" {
		return ""
	}
	return filepath.Join(s.opts.Legacy, name+".img")
}

// remedy says how to supply an image without the network.
func (s *Store) remedy(name string) string {
	r := "supply it with `kvm-compose image import " + name + " FILE`"
	if l := s.legacyPath(name); l != "" {
		r += ", or put it at " + l
	}
	return r
}

// takeLegacy takes the original's <name>.img into the cache (a hard link
// when on the same file system, else a copy).
func (s *Store) takeLegacy(ctx context.Context, name, file, want string) (Entry, error) {
	f, err := os.Open(file)
	if err != nil {
		return Entry{}, err
	}
	defer f.Close()
	sum, n, err := s.store(ctx, f, want)
	if err != nil {
		return Entry{}, fmt.Errorf("image %s from %s: %w", name, file, err)
	}
	e := Entry{Name: name, SHA256: sum, Size: n, Fetched: time.Now().UTC()}
	return e, s.edit(func(idx map[string]Entry) error { idx[name] = e; return nil })
}

// download fetches rawURL for name into the cache. A partial file of an
// earlier try is resumed with a range request when the server still has
// the same file (If-Range).
func (s *Store) download(ctx context.Context, name, rawURL, want string, logf func(string, ...any)) (Entry, error) {
	fail := func(err error) (Entry, error) {
		return Entry{}, fmt.Errorf("download %s: %w; offline, %s", rawURL, err, s.remedy(name))
	}
	if err := s.mkdirs(); err != nil {
		return Entry{}, err
	}
	part := filepath.Join(s.blobDir(), "."+name+".part")
	validator := filepath.Join(s.blobDir(), "."+name+".part-validator")
	f, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return Entry{}, fmt.Errorf("image cache: %w", err)
	}
	defer f.Close()
	have, _ := f.Seek(0, io.SeekEnd)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fail(err)
	}
	if v, _ := os.ReadFile(validator); have > 0 && len(v) > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		req.Header.Set("If-Range", string(v))
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		logf("    image %s: resuming the download of %s at %.1f MiB", name, rawURL, float64(have)/(1<<20))
	case http.StatusOK:
		if err := f.Truncate(0); err != nil {
			return Entry{}, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return Entry{}, err
		}
		have = 0
		logf("    image %s: downloading %s (%s)", name, rawURL, sizeText(resp.ContentLength))
	default:
		return fail(errors.New(resp.Status))
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if v := firstNonEmpty(etag, lm); v != "" {
		_ = os.WriteFile(validator, []byte(v), 0o644)
	}
	n, err := io.Copy(f, &progress{r: ctxReader{ctx, resp.Body}, name: name, logf: logf, done: have, total: have + resp.ContentLength})
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return fail(fmt.Errorf("%w (the %.1f MiB so far are kept; the next up resumes)", err, float64(have+n)/(1<<20)))
	}
	sum, size, err := hashFile(f)
	if err != nil {
		return Entry{}, err
	}
	if want != "" && sum != want {
		os.Remove(part)
		os.Remove(validator)
		return Entry{}, fmt.Errorf("%w: %s has sha256 %s, the YAML wants %s", ErrDigest, rawURL, sum, want)
	}
	if err := s.commit(part, sum); err != nil {
		return Entry{}, err
	}
	os.Remove(validator)
	e := Entry{Name: name, URL: rawURL, SHA256: sum, Size: size, ETag: etag, LastModified: lm, Fetched: time.Now().UTC()}
	if err := s.edit(func(idx map[string]Entry) error { idx[name] = e; return nil }); err != nil {
		return Entry{}, err
	}
	logf("    image %s: downloaded %.1f MiB in %.1f s, sha256 %s", name, float64(size)/(1<<20), time.Since(start).Seconds(), sum)
	return e, nil
}

func hashFile(f *os.File) (string, int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func sizeText(n int64) string {
	if n < 0 {
		return "size unknown"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// progress logs a download's progress every quarter.
type progress struct {
	r           io.Reader
	name        string
	logf        func(string, ...any)
	done, total int64
	next        int64
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.total > 0 {
		if p.next == 0 {
			p.next = p.total / 4
		}
		if p.done >= p.next && p.done < p.total {
			p.logf("    image %s: %d%% of %s", p.name, p.done*100/p.total, sizeText(p.total))
			p.next += p.total / 4
		}
	}
	return n, err
}
