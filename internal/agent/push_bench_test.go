package agent_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/agent"
)

// pushBenchSize is the image pushed by BenchmarkPushImage.
const pushBenchSize = 500 << 20

// BenchmarkPushImage: a 500 MB image pushed to a client agent over
// loopback (sha256 on arrival, resumable, synced to disk), next to a plain
// net/http PUT of the same file into a file over the same link, in the same
// run, once over HTTP and once over TLS (the link between a main and its
// clients). It reports both throughputs and push/plain (target ≥ 0.8). The
// plain PUT leaves its file to the page cache, the push syncs it: the plain
// file is synced outside the timing, before the push runs.
// The main's sha256 of the image is computed once before (it is cached by
// path, size and modification time, as for every up after the first).
func BenchmarkPushImage(b *testing.B) {
	src := filepath.Join(b.TempDir(), "image.qcow2")
	writeNoise(b, src, pushBenchSize)
	for _, link := range []string{"http", "tls"} {
		b.Run("link="+link, func(b *testing.B) { benchPush(b, src, link == "tls") })
	}
}

func benchPush(b *testing.B, src string, tls bool) {
	serve := httptest.NewServer
	if tls {
		serve = httptest.NewTLSServer
	}
	plainDir := b.TempDir()
	plain := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Create(filepath.Join(plainDir, "image"))
		if err == nil {
			_, err = io.Copy(f, r.Body)
			f.Close()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	b.Cleanup(plain.Close)

	data := b.TempDir()
	srv := serve(agent.Handler(agent.Options{Name: "c1", DataDir: data}))
	b.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Client: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	files := remote.Files(filepath.Dir(src))
	ctx := context.Background()
	// The first push hashes the image on the main; it is not timed.
	if _, err := files.Path(ctx, src); err != nil {
		b.Fatal(err)
	}
	var plainTime, pushTime time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		putPlain(b, plain.Client(), plain.URL, src)
		plainTime += time.Since(start)
		// The plain copy's dirty pages are written out before the push
		// starts (untimed), so that writing them back does not slow the
		// push down.
		b.StopTimer()
		unix.Sync()
		b.StartTimer()
		os.Remove(filepath.Join(plainDir, "image"))

		os.RemoveAll(filepath.Join(data, "cache"))
		start = time.Now()
		if _, err := files.Path(ctx, src); err != nil {
			b.Fatal(err)
		}
		pushTime += time.Since(start)
	}
	b.StopTimer()
	mbps := func(d time.Duration) float64 { return float64(pushBenchSize) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(plainTime), "plain-MB/s")
	b.ReportMetric(mbps(pushTime), "push-MB/s")
	b.ReportMetric(plainTime.Seconds()/pushTime.Seconds(), "push/plain")
}

func putPlain(b *testing.B, client *http.Client, url, src string) {
	f, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	req, err := http.NewRequest(http.MethodPut, url, f)
	if err != nil {
		b.Fatal(err)
	}
	req.ContentLength = pushBenchSize
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("plain PUT: %s", resp.Status)
	}
}

// writeNoise writes size bytes that do not compress.
func writeNoise(b *testing.B, path string, size int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for written := 0; written < size; written += len(buf) {
		r.Read(buf)
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}
