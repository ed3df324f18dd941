package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/config"
)

// authEnv is a server with token auth on, served on TCP and a unix socket.
type authEnv struct {
	base, token string
	srv         *Server
	sock        *http.Client
}

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "tbgui")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cfg := config.Server{
		DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", Socket: filepath.Join(sockDir, "api.sock"),
		DB: "file", Auth: true, HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	s, err := New(context.Background(), Options{Config: cfg, Executor: newGate()})
	if err != nil {
		t.Fatal(err)
	}
	ls, stop, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })
	tok, err := os.ReadFile(cfg.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	sock := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", cfg.Socket)
	}}, CheckRedirect: noRedirect}
	return &authEnv{base: "http://" + ls[0].Addr().String(), token: strings.TrimSpace(string(tok)), srv: s, sock: sock}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

var plain = &http.Client{CheckRedirect: noRedirect, Timeout: 30 * time.Second}

func (e *authEnv) do(t *testing.T, c *http.Client, method, path, body string, hdr map[string]string) *http.Response {
	t.Helper()
	base := e.base
	if c != plain {
		base = "http://testbedos"
	}
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (e *authEnv) login(t *testing.T) *http.Cookie {
	t.Helper()
	resp := e.do(t, plain, "POST", "/login", url.Values{"token": {e.token}, "next": {"/deployments"}}.Encode(),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.base})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/deployments" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Value == "" {
				t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure without TLS", c)
			}
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

func TestGUIAuth(t *testing.T) {
	e := newAuthEnv(t)
	cookie := e.login(t)
	session := SessionCookie + "=" + cookie.Value
	const yaml = "machines: [{name: a}]\n"
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		want               int
		location           string
	}{
		{"api without credentials", "GET", "/api/deployments", nil, 401, ""},
		{"page without credentials redirects", "GET", "/deployments/lab?x=1", nil, 303, "/login?next=%2Fdeployments%2Flab%3Fx%3D1"},
		{"login form is public", "GET", "/login", nil, 200, ""},
		{"its stylesheet too", "GET", "/static/style.css", nil, 200, ""},
		{"wrong session", "GET", "/api/deployments", map[string]string{"Cookie": SessionCookie + "=nope"}, 401, ""},
		{"session reads the api", "GET", "/api/deployments", map[string]string{"Cookie": session}, 200, ""},
		{"session reads pages", "GET", "/", map[string]string{"Cookie": session}, 200, ""},
		{"unsafe without origin", "POST", "/api/validate/yaml", map[string]string{"Cookie": session}, 403, ""},
		{"unsafe from another origin", "POST", "/api/validate/yaml", map[string]string{"Cookie": session, "Origin": "http://evil.example"}, 403, ""},
		{"unsafe from another scheme", "POST", "/api/validate/yaml", map[string]string{"Cookie": session, "Origin": strings.Replace(e.base, "http:", "https:", 1)}, 403, ""},
		{"unsafe from a foreign referer", "DELETE", "/api/deployments/lab", map[string]string{"Cookie": session, "Referer": "http://evil.example/x"}, 403, ""},
		{"unsafe from our origin", "POST", "/api/validate/yaml", map[string]string{"Cookie": session, "Origin": e.base}, 200, ""},
		{"unsafe with our referer", "POST", "/api/validate/yaml", map[string]string{"Cookie": session, "Referer": e.base + "/deployments/new"}, 200, ""},
		{"bearer needs no origin", "POST", "/api/validate/yaml", map[string]string{"Authorization": "Bearer " + e.token}, 200, ""},
		{"wrong bearer beats a session", "GET", "/api/deployments", map[string]string{"Cookie": session, "Authorization": "Bearer x"}, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(t, plain, tc.method, tc.path, yaml, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
			if tc.location != "" && resp.Header.Get("Location") != tc.location {
				t.Fatalf("Location %q, want %q", resp.Header.Get("Location"), tc.location)
			}
		})
	}
	// Wrong token: the form again, 401, no cookie.
	resp := e.do(t, plain, "POST", "/login", "token=wrong", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	// A login form posted from another site is refused.
	resp = e.do(t, plain, "POST", "/login", "token="+e.token, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"})
	if resp.StatusCode != 403 {
		t.Fatalf("cross-site login: %d", resp.StatusCode)
	}
	// Logout ends the session on the server, not only in the browser.
	resp = e.do(t, plain, "POST", "/logout", "", map[string]string{"Cookie": session, "Origin": e.base})
	if resp.StatusCode != 303 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp := e.do(t, plain, "GET", "/api/deployments", "", map[string]string{"Cookie": session}); resp.StatusCode != 401 {
		t.Fatalf("after logout: %d, want 401", resp.StatusCode)
	}
	// Over the unix socket there is no login.
	if resp := e.do(t, e.sock, "GET", "/", "", nil); resp.StatusCode != 200 {
		t.Fatalf("dashboard over the socket: %d", resp.StatusCode)
	}
	if resp := e.do(t, e.sock, "GET", "/login", "", nil); resp.StatusCode != 303 {
		t.Fatalf("login over the socket: %d, want a redirect to /", resp.StatusCode)
	}
}

func TestSessionCookieIsSecureUnderTLS(t *testing.T) {
	e := newAuthEnv(t)
	req := httptest.NewRequest("POST", "https://localhost/login", strings.NewReader("token="+e.token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://localhost")
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	cookies := rec.Result().Cookies()
	if rec.Code != 303 || len(cookies) != 1 || !cookies[0].Secure || !cookies[0].HttpOnly {
		t.Fatalf("login under TLS: %d, cookies %+v", rec.Code, cookies)
	}
}

func TestSessionsExpire(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newSessions(time.Hour)
	s.now = func() time.Time { return now }
	id, exp, err := s.create()
	if err != nil || !exp.Equal(now.Add(time.Hour)) {
		t.Fatal(exp, err)
	}
	if !s.valid(id) || s.valid("other") || s.valid("") {
		t.Fatal("validity")
	}
	now = now.Add(time.Hour)
	if s.valid(id) {
		t.Fatal("session outlived its expiry")
	}
	if len(s.m) != 0 {
		t.Fatal("expired session kept")
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/deployments/lab": "/deployments/lab", "": "/", "//evil.example": "/", "https://evil.example": "/",
		"/\\evil.example": "/", "/login?next=/x": "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
