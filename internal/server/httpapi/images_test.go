package httpapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

// multipartBody is an import form: its fields in order, then the file.
func imageMultipart(t *testing.T, fields [][2]string, file string) (string, http.Header) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range fields {
		mw.WriteField(f[0], f[1])
	}
	if file != "" {
		fw, err := mw.CreateFormFile("file", "disk.img")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte(file))
	}
	mw.Close()
	return b.String(), http.Header{"Content-Type": {mw.FormDataContentType()}}
}

// imageCalls: import (checked digest, bad forms), list with the
// deployments using an image, delete refused while used.
func imageCalls(t *testing.T, c *contract, tb *testbed) {
	tcp := tb.tcp
	content := "QFI\xfb an image"
	sum := sha256.Sum256([]byte(content))
	hexSum := hex.EncodeToString(sum[:])

	body, hdr := imageMultipart(t, [][2]string{{"name", "debian12"}, {"sha256", hexSum}}, content)
	_, out := c.do(t, tcp, call{method: "POST", path: "/api/images", body: body, header: hdr, want: 201})
	var img api.Image
	if err := json.Unmarshal(out, &img); err != nil || img.Name != "debian12" || img.SHA256 != hexSum || img.Size != int64(len(content)) {
		t.Fatalf("imported %s: %+v %v", out, img, err)
	}
	body, hdr = imageMultipart(t, [][2]string{{"name", "other"}, {"sha256", strings.Repeat("0", 64)}}, content)
	c.do(t, tcp, call{method: "POST", path: "/api/images", body: body, header: hdr, want: 422})
	body, hdr = imageMultipart(t, nil, content)
	c.do(t, tcp, call{method: "POST", path: "/api/images", body: body, header: hdr, want: 400})
	body, hdr = imageMultipart(t, [][2]string{{"name", "../etc"}}, content)
	c.do(t, tcp, call{method: "POST", path: "/api/images", body: body, header: hdr, want: 400})
	c.do(t, tcp, call{method: "POST", path: "/api/images", body: `{}`, want: 400, doc: docRejects})

	// A deployment's disk made from the image holds it.
	blob := filepath.Join(tb.cfg.DataDir, "cache", "images", "sha256", hexSum)
	if _, err := os.Stat(blob); err != nil {
		t.Fatalf("content-addressed file: %v", err)
	}
	disk := filepath.Join(tb.cfg.DisksDir(), "lab", "vm1.qcow2")
	os.MkdirAll(filepath.Dir(disk), 0o755)
	hdrBytes := make([]byte, 104)
	copy(hdrBytes, "QFI\xfb")
	binary.BigEndian.PutUint64(hdrBytes[8:], 104)
	binary.BigEndian.PutUint32(hdrBytes[16:], uint32(len(blob)))
	os.WriteFile(disk, append(hdrBytes, blob...), 0o644)

	_, out = c.do(t, tcp, call{method: "GET", path: "/api/images", want: 200})
	var list []api.Image
	if err := json.Unmarshal(out, &list); err != nil || len(list) != 1 || len(list[0].UsedBy) != 1 || list[0].UsedBy[0] != "lab" {
		t.Fatalf("list %s: %v", out, err)
	}
	c.do(t, tcp, call{method: "DELETE", path: "/api/images/debian12", want: 409})
	os.Remove(disk)
	c.do(t, tcp, call{method: "DELETE", path: "/api/images/debian12", want: 204})
	c.do(t, tcp, call{method: "DELETE", path: "/api/images/debian12", want: 404})
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("content left after delete: %v", err)
	}
}
