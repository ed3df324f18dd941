package ovn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The host's own Open vSwitch and OVN run their sockets in these folders;
// when both answer, the daemon uses them and starts nothing.
const (
	hostOVSRun = "/var/run/openvswitch"
	hostOVNRun = "/var/run/ovn"
)

// Schemas Debian's packages install.
var (
	ovsSchema = "/usr/share/openvswitch/vswitch.ovsschema"
	nbSchema  = "/usr/share/ovn/ovn-nb.ovsschema"
	sbSchema  = "/usr/share/ovn/ovn-sb.ovsschema"
)

// Endpoints are the OVSDB sockets of one host's Open vSwitch and OVN.
type Endpoints struct {
	// OVS is the local Open_vSwitch database, NB and SB OVN's northbound
	// and southbound databases ("unix:/path").
	OVS, NB, SB string
	// Run is the folder of the daemons' sockets and control files.
	Run string
}

// HostEndpoints are the host's own daemons' sockets.
func HostEndpoints() Endpoints {
	return Endpoints{
		OVS: "unix:" + filepath.Join(hostOVSRun, "db.sock"),
		NB:  "unix:" + filepath.Join(hostOVNRun, "ovnnb_db.sock"),
		SB:  "unix:" + filepath.Join(hostOVNRun, "ovnsb_db.sock"),
		Run: hostOVNRun,
	}
}

// answers reports whether something listens on the unix endpoint.
func answers(endpoint string) bool {
	c, err := net.DialTimeout("unix", strings.TrimPrefix(endpoint, "unix:"), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Daemons runs the OVS and OVN daemons of one host from a folder of its
// own (<data>/ovn): the OVS database and ovs-vswitchd, the northbound and
// southbound databases, ovn-northd and ovn-controller. Each runs in the
// foreground as a child; one that dies is started again, and Stop ends them
// all, newest first.
type Daemons struct {
	Dir    string
	Logger *slog.Logger
	// Netns, when set, is the named network namespace they run in.
	Netns string
	// SBListen are further remotes of the southbound database.
	SBListen []string
	// TLS are the SSL files of the southbound database (with SBListen) or,
	// on a chassis, of ovn-controller.
	TLS *TLSFiles
	// Chassis: these daemons are a chassis of another host's OVN; at Stop
	// ovn-controller removes its chassis from the southbound database.
	Chassis bool

	mu       sync.Mutex
	procs    []*proc
	stopping bool
}

// proc is one supervised daemon.
type proc struct {
	name string
	args []string
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
	// started is when it was last started; quick counts the exits in a
	// row that came within quickExit of a start.
	started time.Time
	quick   int
	// restart: Restart ended it, to be started again at once.
	restart bool
}

// A daemon that exits within quickExit of its start maxQuick times in a
// row is not started again: it would only fail again (a bad database, a
// port in use); its log says why.
const (
	quickExit = 5 * time.Second
	maxQuick  = 5
)

// daemonBinaries are the programs Daemons runs.
var daemonBinaries = []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovn-northd", "ovn-controller"}

// Installed returns an error naming what is missing when Open vSwitch and
// OVN are not installed.
func Installed() error {
	var missing []string
	for _, b := range daemonBinaries {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, f := range []string{ovsSchema, nbSchema, sbSchema} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the ovn network backend needs Open vSwitch and OVN, and %s are missing: install Debian's openvswitch-switch, ovn-central and ovn-host (setup.sh --with-ovn), or start the server with TESTBEDOS_NETWORK=bridge", strings.Join(missing, ", "))
	}
	return nil
}

// Endpoints are the sockets of the daemons under d.Dir.
func (d *Daemons) Endpoints() Endpoints {
	return Endpoints{
		OVS: "unix:" + filepath.Join(d.Dir, "db.sock"),
		NB:  "unix:" + filepath.Join(d.Dir, "ovnnb_db.sock"),
		SB:  "unix:" + filepath.Join(d.Dir, "ovnsb_db.sock"),
		Run: d.Dir,
	}
}

// StartDatabases makes the three databases if they are missing and starts
// their servers, then ovn-northd; ovs-vswitchd and ovn-controller need the
// Open_vSwitch row first (StartSwitch).
func (d *Daemons) StartDatabases(ctx context.Context) error {
	if err := Installed(); err != nil {
		return err
	}
	if err := os.MkdirAll(d.Dir, 0o750); err != nil {
		return err
	}
	ep := d.Endpoints()
	dbs := []dbFile{
		{"conf.db", ovsSchema, ep.OVS, "ovsdb-server.ctl"},
		{"ovnnb_db.db", nbSchema, ep.NB, "ovnnb_db.ctl"},
		{"ovnsb_db.db", sbSchema, ep.SB, "ovnsb_db.ctl"},
	}
	if err := d.startDBs(ctx, dbs); err != nil {
		return err
	}
	return d.start(ctx, "ovn-northd", "ovn-northd", []string{
		"--ovnnb-db=" + ep.NB, "--ovnsb-db=" + ep.SB,
		"--unixctl=" + filepath.Join(d.Dir, "ovn-northd.ctl")}, "")
}

// StartOVS makes the Open vSwitch database if it is missing and starts its
// server: a chassis whose OVN databases run on another host.
func (d *Daemons) StartOVS(ctx context.Context) error {
	if err := Installed(); err != nil {
		return err
	}
	if err := os.MkdirAll(d.Dir, 0o750); err != nil {
		return err
	}
	return d.startDBs(ctx, []dbFile{{"conf.db", ovsSchema, d.Endpoints().OVS, "ovsdb-server.ctl"}})
}

// dbFile is one database: its file, schema, socket and control socket.
type dbFile struct{ file, schema, sock, ctl string }

// startDBs makes the databases that are missing and starts their servers.
func (d *Daemons) startDBs(ctx context.Context, dbs []dbFile) error {
	for _, db := range dbs {
		path := filepath.Join(d.Dir, db.file)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if out, err := exec.CommandContext(ctx, "ovsdb-tool", "create", path, db.schema).CombinedOutput(); err != nil {
				return fmt.Errorf("ovsdb-tool create %s: %v: %s", path, err, out)
			}
		}
		name := strings.TrimSuffix(db.ctl, ".ctl")
		args := []string{path, "--remote=punix:" + strings.TrimPrefix(db.sock, "unix:"),
			"--unixctl=" + filepath.Join(d.Dir, db.ctl)}
		if db.file == "conf.db" {
			args = append(args, "--remote=db:Open_vSwitch,Open_vSwitch,manager_options")
		}
		if db.file == "ovnsb_db.db" {
			for _, r := range d.SBListen {
				args = append(args, "--remote="+r)
			}
			if len(d.SBListen) > 0 {
				args = append(args, d.TLS.args()...)
			}
		}
		if err := d.start(ctx, name, "ovsdb-server", args, db.sock); err != nil {
			return err
		}
	}
	return nil
}

// StartSwitch starts ovs-vswitchd and ovn-controller.
func (d *Daemons) StartSwitch(ctx context.Context) error {
	ep := d.Endpoints()
	if err := d.start(ctx, "ovs-vswitchd", "ovs-vswitchd", []string{ep.OVS,
		"--unixctl=" + filepath.Join(d.Dir, "ovs-vswitchd.ctl")}, ""); err != nil {
		return err
	}
	// ovn-controller takes no --unixctl: its control socket goes to
	// OVN_RUNDIR.
	args := []string{ep.OVS}
	if d.Chassis {
		args = append(args, d.TLS.args()...)
	}
	return d.start(ctx, "ovn-controller", "ovn-controller", args, "")
}

// start runs one daemon with its pid and log files under d.Dir, ending
// first one that an earlier run of this folder left behind; wait, when
// set, is a socket to wait for.
func (d *Daemons) start(ctx context.Context, name, bin string, args []string, wait string) error {
	pidfile := filepath.Join(d.Dir, name+".pid")
	killStale(pidfile, bin)
	args = append(args, "--pidfile="+pidfile, "--log-file="+filepath.Join(d.Dir, name+".log"))
	p := &proc{name: name, args: append([]string{bin}, args...),
		env: append(os.Environ(), "OVS_RUNDIR="+d.Dir, "OVN_RUNDIR="+d.Dir, "OVS_DBDIR="+d.Dir, "OVS_LOGDIR="+d.Dir, "OVN_LOGDIR="+d.Dir)}
	if err := d.run(p); err != nil {
		return err
	}
	d.mu.Lock()
	d.procs = append(d.procs, p)
	d.mu.Unlock()
	if wait == "" {
		return nil
	}
	for !answers(wait) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited at start (see %s)", name, filepath.Join(d.Dir, name+".log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// run starts p and watches it: a daemon that dies while not stopping is
// started again after a second.
func (d *Daemons) run(p *proc) error {
	cmd := exec.Command(p.args[0], p.args[1:]...)
	if d.Netns != "" {
		// ip netns exec execs the daemon: the pid stays the daemon's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", d.Netns}, p.args...)...)
	}
	cmd.Env = p.env
	cmd.Dir = d.Dir
	// Their own process group (a Ctrl-C of the server's terminal is the
	// server's to handle), and SIGTERM when the server dies without
	// stopping them; a later start also ends what a pidfile names.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// What a daemon says before its log file is open goes to a file of
	// its own.
	stderr, err := os.OpenFile(filepath.Join(d.Dir, p.name+".stderr"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := startOnKeptThread(cmd); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.done, p.started = cmd, make(chan struct{}), time.Now()
	go func(done chan struct{}) {
		err := cmd.Wait()
		close(done)
		d.mu.Lock()
		stopping, restart := d.stopping, p.restart
		p.restart = false
		if time.Since(p.started) < quickExit && !restart {
			p.quick++
		} else {
			p.quick = 0
		}
		quick := p.quick
		d.mu.Unlock()
		if stopping {
			return
		}
		if restart {
			d.mu.Lock()
			defer d.mu.Unlock()
			if !d.stopping {
				if err := d.run(p); err != nil {
					d.log().Error("OVS/OVN daemon could not be started again", "daemon", p.name, "err", err)
				}
			}
			return
		}
		if quick >= maxQuick {
			d.log().Error("OVS/OVN daemon keeps exiting at start; not started again", "daemon", p.name, "err", err,
				"log", filepath.Join(d.Dir, p.name+".log"))
			return
		}
		d.log().Warn("OVS/OVN daemon exited; starting it again", "daemon", p.name, "err", err)
		time.Sleep(time.Second)
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.stopping {
			return
		}
		if err := d.run(p); err != nil {
			d.log().Error("OVS/OVN daemon could not be started again", "daemon", p.name, "err", err)
		}
	}(p.done)
	return nil
}

func (d *Daemons) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// Stop ends the daemons, newest first: SIGTERM, then SIGKILL after five
// seconds.
func (d *Daemons) Stop() {
	d.mu.Lock()
	d.stopping = true
	procs := d.procs
	d.procs = nil
	d.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if d.Chassis && p.name == "ovn-controller" {
			d.leave(p)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// Restart ends the daemon name and starts it again (ovsdb-server reads
// the certificates it trusts only at start); its clients reconnect.
func (d *Daemons) Restart(ctx context.Context, name string) error {
	d.mu.Lock()
	var p *proc
	for _, q := range d.procs {
		if q.name == name {
			p = q
		}
	}
	if p == nil || d.stopping {
		d.mu.Unlock()
		return fmt.Errorf("no daemon %s to restart", name)
	}
	p.restart = true
	done := p.done
	p.cmd.Process.Signal(syscall.SIGTERM)
	d.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	sock := filepath.Join(d.Dir, name+".sock")
	for !answers("unix:" + sock) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not start again: %w", name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// leave has a chassis's ovn-controller exit by its control socket, which
// removes its Chassis row from the southbound database (a SIGTERM leaves
// it); it waits up to five seconds.
func (d *Daemons) leave(p *proc) {
	ctl := filepath.Join(d.Dir, fmt.Sprintf("ovn-controller.%d.ctl", p.cmd.Process.Pid))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ovn-appctl", "-t", ctl, "exit").CombinedOutput(); err != nil {
		d.log().Warn("ovn-controller did not leave the southbound database", "err", err, "out", strings.TrimSpace(string(out)))
		return
	}
	select {
	case <-p.done:
	case <-ctx.Done():
	}
}

// The daemons are started from one OS thread that lives as long as the
// server: Pdeathsig fires when the thread that started a child ends, and
// Go ends the threads of goroutines that exit locked (as code that enters
// a network namespace does).
var (
	keptThread     chan func()
	keptThreadOnce sync.Once
)

func startOnKeptThread(cmd *exec.Cmd) error {
	keptThreadOnce.Do(func() {
		keptThread = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread is kept
			for f := range keptThread {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	keptThread <- func() { errc <- cmd.Start() }
	return <-errc
}

// killStale ends the process of pidfile when it still runs bin: a daemon
// an earlier run of the same folder left (the server was killed).
func killStale(pidfile, bin string) {
	data, err := os.ReadFile(pidfile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || !strings.HasPrefix(filepath.Base(bin), strings.TrimSpace(string(comm))) {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}
