// Package gui serves the web pages: server-rendered html/template pages
// with a little of our own JavaScript and CSS, embedded in the binary, and
// the JavaScript libraries of static/vendor/ (xterm.js), which
// scripts/gui-assets.sh installs from npm at build time.
// In development mode (TESTBEDOS_DEV=1) templates and static files are read
// again from the source tree on every request, so an edit shows on reload.
package gui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

//go:embed templates/*.html static/*
var embedded embed.FS

// Records is what the pages read of the store (store.Store has it).
type Records interface {
	Deployments(ctx context.Context) ([]api.Deployment, error)
	Deployment(ctx context.Context, name string) (api.Deployment, error)
	LogIndex(ctx context.Context, name string) (api.LogIndex, error)
}

// Options configure the GUI.
type Options struct {
	Records Records
	// API is the REST API's handler, below authentication: the create
	// page creates deployments through it, in process.
	API http.Handler
	// ProjectsDir holds the project folders of deployments created from
	// pasted YAML: <ProjectsDir>/<name>/kvm-compose.yaml.
	ProjectsDir string
	// Status is this server's status for the dashboard and configuration.
	Status func() api.ServerStatus
	// Dev re-reads templates and static files from DevDir on every request.
	Dev bool
	// DevDir is the source folder of this package (it holds templates/ and
	// static/); empty means the folder this file was compiled from.
	DevDir string
	Logger *slog.Logger
}

// GUI renders the pages.
type GUI struct {
	opts Options
	tpls map[string]*template.Template
	err  error
}

// pages are the page templates; each is parsed with layout.html.
var pageNames = []string{"dashboard", "deployments", "new", "deployment", "cluster", "config", "login"}

// SourceDir is the folder this package was compiled from, when it still
// exists with its templates (a binary built on this machine).
func SourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(filepath.Join(dir, "templates", "layout.html")); err != nil {
		return ""
	}
	return dir
}

// New checks the options and, outside development mode, parses the
// embedded templates once.
func New(opts Options) (*GUI, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dev {
		if opts.DevDir == "" {
			opts.DevDir = SourceDir()
		}
		if opts.DevDir == "" {
			return nil, errors.New("gui: development mode needs the source folder of internal/gui: set --dev-dir (TESTBEDOS_DEV_DIR)")
		}
		if _, err := os.Stat(filepath.Join(opts.DevDir, "templates", "layout.html")); err != nil {
			return nil, fmt.Errorf("gui: dev dir (--dev-dir, TESTBEDOS_DEV_DIR) %s holds no templates/layout.html: %w", opts.DevDir, err)
		}
	}
	g := &GUI{opts: opts}
	if !opts.Dev {
		if g.tpls, g.err = parse(embedded); g.err != nil {
			return nil, g.err
		}
	}
	return g, nil
}

// assets is where templates and static files come from right now.
func (g *GUI) assets() fs.FS {
	if g.opts.Dev {
		return os.DirFS(g.opts.DevDir)
	}
	return embedded
}

func parse(fsys fs.FS) (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(fsys, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("gui: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"since": func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
	"ms": func(p *int64) string {
		if p == nil {
			return "—"
		}
		return (time.Duration(*p) * time.Millisecond).Round(time.Millisecond).String()
	},
	"outcome": outcome,
	"when":    func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
}

// render writes page with data; a template error is a 500 in plain text.
func (g *GUI) render(w http.ResponseWriter, status int, page string, data any) {
	tpls := g.tpls
	if g.opts.Dev {
		var err error
		if tpls, err = parse(g.assets()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	var buf bytes.Buffer
	if err := tpls[page].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		g.opts.Logger.Error("gui: rendering", "page", page, "err", err)
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Page routes.
const (
	RouteDashboard   = "GET /{$}"
	RouteDeployments = "GET /deployments"
	RouteNew         = "GET /deployments/new"
	RouteCreate      = "POST /deployments/new"
	RouteDeployment  = "GET /deployments/{name}"
	RouteCluster     = "GET /cluster"
	RouteConfig      = "GET /config"
	RouteStatic      = "GET /static/"
	RouteFavicon     = "GET /favicon.ico"
)

// Page is one route of the GUI; Public pages are served without a login.
type Page struct {
	Pattern string
	Handler http.Handler
	Public  bool
}

// Pages are the GUI's routes. /login and /logout belong to the server's
// authentication, which renders the form with Login.
func (g *GUI) Pages() []Page {
	return []Page{
		{RouteDashboard, http.HandlerFunc(g.dashboard), false},
		{RouteDeployments, http.HandlerFunc(g.deployments), false},
		{RouteNew, http.HandlerFunc(g.newPage), false},
		{RouteCreate, http.HandlerFunc(g.create), false},
		{RouteDeployment, http.HandlerFunc(g.deployment), false},
		{RouteCluster, g.simple("cluster", "Cluster"), false},
		{RouteConfig, g.simple("config", "Configuration"), false},
		// The login form's own stylesheet and script.
		{RouteStatic, http.HandlerFunc(g.static), true},
		{RouteFavicon, http.HandlerFunc(g.favicon), true},
	}
}

// Register adds the pages to mux.
func (g *GUI) Register(mux *http.ServeMux) {
	for _, p := range g.Pages() {
		mux.Handle(p.Pattern, p.Handler)
	}
}

func (g *GUI) static(w http.ResponseWriter, r *http.Request) {
	if g.opts.Dev {
		w.Header().Set("Cache-Control", "no-store")
	} else {
		w.Header().Set("Cache-Control", "max-age=300")
	}
	http.FileServerFS(g.assets()).ServeHTTP(w, r)
}

// favicon is the page icon, an SVG (browsers take one under any name).
func (g *GUI) favicon(w http.ResponseWriter, r *http.Request) {
	data, err := fs.ReadFile(g.assets(), "static/favicon.svg")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "max-age=86400")
	w.Write(data)
}

// Login renders the login form, with msg as an error when not empty.
func (g *GUI) Login(w http.ResponseWriter, status int, next, msg string) {
	g.render(w, status, "login", page{Title: "Log in", Nav: "login", Error: msg, Data: next})
}

// page is what every template gets.
type page struct {
	Title  string
	Nav    string
	Error  string
	Status api.ServerStatus
	Data   any
}

func (g *GUI) page(title, nav string, data any) page {
	p := page{Title: title, Nav: nav, Data: data}
	if g.opts.Status != nil {
		p.Status = g.opts.Status()
	}
	return p
}

func (g *GUI) simple(name, title string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.render(w, http.StatusOK, name, g.page(title, name, nil))
	}
}

// outcome names an action's error code (the exit codes of kvm-compose).
func outcome(code *int) string {
	if code == nil {
		return "running"
	}
	switch *code {
	case api.ErrorCodeOK:
		return "success"
	case api.ErrorCodeCancelled:
		return "cancelled"
	case api.ErrorCodeInterrupted:
		return "interrupted"
	}
	return "failed"
}
