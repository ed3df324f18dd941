package httpapi_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/testbedos/testbedos/internal/api"
)

// multipartBody is a POST /api/deployments/import body: the name part
// (when not empty) and the bundle part.
func multipartBody(t *testing.T, name string, bundle []byte) (string, http.Header) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if name != "" {
		mw.WriteField("name", name)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="bundle"; filename="b.tar.gz"`)
	h.Set("Content-Type", "application/gzip")
	w, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bundle)
	mw.Close()
	return b.String(), http.Header{"Content-Type": {mw.FormDataContentType()}}
}

// sharingExchanges drives graph, inventory, export and import on a
// deployment of its own.
func sharingExchanges(t *testing.T, c *contract, tb *testbed) {
	for _, ct := range []string{"application/gzip", "text/vnd.graphviz", "text/vnd.mermaid", "image/svg+xml", "application/yaml"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
	tcp := tb.tcp
	dir := project(t, goodTopology)
	os.WriteFile(filepath.Join(dir, "setup.sh"), []byte("#!/bin/sh\n"), 0o755)
	c.do(t, tcp, call{method: "POST", path: "/api/deployments", body: jsonBody(api.NewDeployment{Name: "share", ProjectLocation: dir}), want: 201})
	const p = "/api/deployments/share/"
	c.do(t, tcp, call{method: "GET", path: p + "graph", want: 404})
	c.do(t, tcp, call{method: "GET", path: p + "inventory", want: 404})
	var a api.ActionAccepted
	c.doJSON(t, tcp, call{method: "POST", path: p + "action", body: `{"command":"generate-artefacts"}`, want: 202}, &a)
	c.outcomeOf(t, tcp, a.UUID)

	for _, f := range []string{"", "?format=json", "?format=dot", "?format=mermaid", "?format=svg"} {
		_, body := c.do(t, tcp, call{method: "GET", path: p + "graph" + f, want: 200})
		if !strings.Contains(string(body), "web") {
			t.Errorf("graph%s names no guest web: %.200s", f, body)
		}
	}
	for _, f := range []string{"", "?format=ansible", "?format=ssh-config", "?format=hosts"} {
		_, body := c.do(t, tcp, call{method: "GET", path: p + "inventory" + f, want: 200})
		if !strings.Contains(string(body), "10.0.0.10") {
			t.Errorf("inventory%s lacks web's address: %.200s", f, body)
		}
	}
	c.do(t, tcp, call{method: "GET", path: p + "graph?format=png", want: 400, doc: docRejects})
	c.do(t, tcp, call{method: "GET", path: p + "inventory?format=xml", want: 400, doc: docRejects})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/Bad/export", want: 400, doc: docRejects})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/nope/export", want: 404})

	hdr, bundle := c.do(t, tcp, call{method: "GET", path: p + "export", want: 200})
	if cd := hdr.Get("Content-Disposition"); !strings.Contains(cd, "share.tar.gz") {
		t.Errorf("Content-Disposition %q", cd)
	}
	names := tarNames(t, bundle)
	for _, want := range []string{"manifest.json", "project/kvm-compose.yaml", "project/setup.sh", "state.json", "logs/index.json", "logs/" + a.UUID + ".log"} {
		if !names[want] {
			t.Errorf("the bundle lacks %s (has %v)", want, names)
		}
	}

	body, h := multipartBody(t, "shared", bundle)
	var res api.ImportResult
	c.doJSON(t, tcp, call{method: "POST", path: "/api/deployments/import", body: body, header: h, want: 201}, &res)
	if res.From != "share" || res.Files != 2 || !strings.HasPrefix(res.Deployment.ProjectLocation, filepath.Join(tb.cfg.DataDir, "projects", "shared")) {
		t.Errorf("import: %+v", res)
	}
	if data, err := os.ReadFile(filepath.Join(res.Deployment.ProjectLocation, "kvm-compose.yaml")); err != nil || string(data) != goodTopology {
		t.Errorf("imported kvm-compose.yaml: %q %v", data, err)
	}
	c.do(t, tcp, call{method: "POST", path: "/api/deployments/import", body: body, header: h, want: 409})
	body, h = multipartBody(t, "other", []byte("not a bundle"))
	c.do(t, tcp, call{method: "POST", path: "/api/deployments/import", body: body, header: h, want: 400})
	c.do(t, tcp, call{method: "POST", path: "/api/deployments/import", body: `{}`, want: 400, doc: docRejects})
	if _, err := os.Stat(filepath.Join(tb.cfg.DataDir, "projects", "other")); err == nil {
		t.Error("a refused import left its project folder behind")
	}
	// A bundle that unpacks past the bound: a 256 MiB file of zeros is cut
	// off early by the ratio bound.
	body, h = multipartBody(t, "bomb", bombBundle(t))
	c.do(t, tcp, call{method: "POST", path: "/api/deployments/import", body: body, header: h, want: 413})

	// A projects folder that cannot be made is a real fault.
	projects := filepath.Join(tb.cfg.DataDir, "projects")
	os.RemoveAll(projects)
	os.WriteFile(projects, nil, 0o644)
	body, h = multipartBody(t, "late", bundle)
	c.do(t, tcp, call{method: "POST", path: "/api/deployments/import", body: body, header: h, want: 500})
	os.Remove(projects)

	// A state that does not read is a real fault.
	os.WriteFile(filepath.Join(tb.cfg.GeneratedDir(), "share", "state.json"), []byte("{not json"), 0o644)
	c.do(t, tcp, call{method: "GET", path: p + "graph", want: 500})
	c.do(t, tcp, call{method: "GET", path: p + "inventory", want: 500})
	c.do(t, tcp, call{method: "GET", path: p + "export", want: 500})
	c.do(t, tcp, call{method: "DELETE", path: "/api/deployments/share", want: 204})
	c.do(t, tcp, call{method: "DELETE", path: "/api/deployments/shared", want: 204})
}

func tarNames(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = true
	}
}

// bombBundle is a valid manifest followed by 256 MiB of zeros: gzip
// members one after the other (a reader reads them as one stream), the
// zeros one compressed MiB repeated, so the test makes it in no time.
func bombBundle(t *testing.T) []byte {
	t.Helper()
	member := func(data []byte) []byte {
		var b bytes.Buffer
		gz, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		gz.Write(data)
		gz.Close()
		return b.Bytes()
	}
	var head bytes.Buffer
	tw := tar.NewWriter(&head)
	mj, _ := json.Marshal(api.BundleManifest{Format: api.BundleFormat, Deployment: "bomb", Files: []api.BundleFile{{Path: "zeros"}}})
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(mj)), Typeflag: tar.TypeReg})
	tw.Write(mj)
	const mib, size = 1 << 20, 256 << 20
	tw.WriteHeader(&tar.Header{Name: "project/zeros", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
	tw.Flush()
	out := member(head.Bytes())
	zeros := member(make([]byte, mib))
	for i := 0; i < size/mib; i++ {
		out = append(out, zeros...)
	}
	return append(out, member(make([]byte, 1024))...) // the end-of-archive blocks
}
