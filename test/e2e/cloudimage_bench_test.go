package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
	"github.com/testbedos/testbedos/internal/guest/sshkey"
	"github.com/testbedos/testbedos/internal/testenv"
	"github.com/testbedos/testbedos/internal/topology"
	"github.com/testbedos/testbedos/test/cloudimage"
)

// Every VM of the benchmark: as the cloud-image lab's.
const (
	benchVMMemoryMB = 384
	benchVMCPUs     = 1
)

// BenchmarkCloudImageUp times `up` through the server of 1 and of 4 VMs of
// the test's Debian 12 cloud image, from the POST of the action to its
// outcome (every VM answers over SSH and cloud-init is done), next to the
// floor in the same run: as many bare qemu-system-x86_64 processes, same
// accelerator, memory and CPUs, each booting a qcow2 overlay on the same
// image with the seed generate-artefacts wrote, until SSH answers and
// `cloud-init status --wait` returns. The first up of the run downloads
// the image (cold-up-s); the timed ups come from the cache, and the test
// server must have served the image once in all. Down runs untimed. The
// two sides take turns to go first (bare QEMU first in the first
// iteration), and the bare QEMUs share one cgroup of the weight of
// libvirt's machine group; the QEMU processes' CPU time is reported for
// both (qemu-cpu-s, bare-qemu-cpu-s).
//
//	s-to-ready, bare-qemu-s-to-ready, x-of-bare-qemu, cold-up-s
//
//	go test -run '^$' -bench CloudImageUp -benchtime 1x -timeout 60m ./test/e2e/
func BenchmarkCloudImageUp(b *testing.B) {
	libvirttest.Require(b)
	if m := cloudimage.Missing(); len(m) > 0 {
		testenv.Skipf(b, "cannot build the cloud image: %v missing (scripts/install-test-deps.sh)", m)
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	img, err := cloudimage.Cached(ctx, b.Logf)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := cloudimage.Serve(img)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	s := startServer(b)
	for d := s.dataDir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	cold := true
	accelLog := "" // the first up's log, which names the accelerator
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("VMs=%d", n), func(b *testing.B) {
			name := cloudBenchLab(b, s, srv.ImageURL(), n)
			var coldTook time.Duration
			coldLog := ""
			if cold {
				cold = false
				coldTook, coldLog, _ = timedUp(b, s, name)
			} else {
				coldLog = accelLog
			}
			accelLog = coldLog
			var ours, bare time.Duration
			var ourCPU, bareCPU float64
			accel := ""
			accel = "kvm"
			if strings.Contains(coldLog, "qemu/TCG") {
				accel = "tcg"
			}
			b.ResetTimer()
			for i := range b.N {
				// The two sides take turns to go first, so that other
				// load on the machine, which comes and goes, does not
				// favour one.
				runBare := func() {
					b.StopTimer()
					took, cpu, err := bareCloudBoot(ctx, b, qemu, accel, img.Path, s, name)
					if err != nil {
						b.Fatal(err)
					}
					bare += took
					bareCPU += cpu
					b.StartTimer()
				}
				if i%2 == 0 {
					runBare()
				}
				took, _, cpu := timedUp(b, s, name)
				ours += took
				ourCPU += cpu
				if i%2 == 1 {
					runBare()
				}
			}
			b.StopTimer()
			if got := srv.GETs("/" + cloudimage.FileName); got != 1 {
				b.Fatalf("the image was downloaded %d times, want once: an up from the cache downloaded it again", got)
			}
			per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
			b.ReportMetric(per(ours), "s-to-ready")
			b.ReportMetric(per(bare), "bare-qemu-s-to-ready")
			b.ReportMetric(per(ours)/per(bare), "x-of-bare-qemu")
			b.ReportMetric(ourCPU/float64(b.N), "qemu-cpu-s")
			b.ReportMetric(bareCPU/float64(b.N), "bare-qemu-cpu-s")
			if coldTook > 0 {
				b.ReportMetric(coldTook.Seconds(), "cold-up-s")
			}
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: up of %d cloud-image VM(s) until all are ready: %.1f s (QEMU CPU %.1f s); bare qemu: %.1f s (CPU %.1f s) (%.2fx)",
				accel, n, per(ours), ourCPU/float64(b.N), per(bare), bareCPU/float64(b.N), per(ours)/per(bare))
		})
	}
}

// cloudBenchLab makes a deployment of n cloud-image VMs on one switch and
// generates its artefacts; it is brought down and removed at the end.
func cloudBenchLab(b *testing.B, s *server, url string, n int) string {
	var y strings.Builder
	y.WriteString("machines:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&y, "  - name: vm%d\n    network: [{switch: sw0, ip: 10.0.0.%d}]\n    libvirt:\n      cpus: %d\n      memory_mb: %d\n      libvirt_type:\n        cloud_image: {url: %q}\n",
			i, 10+i, benchVMCPUs, benchVMMemoryMB, url)
	}
	y.WriteString("network:\n  switches:\n    sw0: {subnet: 10.0.0.0/24}\ntestbed_options:\n  ready_timeout: 900\n")
	dir := b.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	name := uniqueName("cib")
	if _, err := s.c.CreateDeployment(context.Background(), name, dir); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		benchAction(b, s, name, api.ActionRequest{Command: api.Command{Name: api.CmdDown}})
		if err := libvirttest.RemoveAll(name); err != nil {
			b.Errorf("libvirt clean-up: %v", err)
		}
	})
	if _, err := benchAction(b, s, name, api.ActionRequest{Command: api.Command{Name: api.CmdGenerateArtefacts}}); err != nil {
		b.Fatal(err)
	}
	return name
}

// timedUp runs up, then down untimed; it returns how long up took, its
// log and the CPU time its QEMU processes had used when it returned.
func timedUp(b *testing.B, s *server, name string) (time.Duration, string, float64) {
	start := time.Now()
	lines, err := benchAction(b, s, name, api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
	took := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	cpu := 0.0
	for i, pid := range domainPIDs(name) {
		cpu += cpuSeconds(b, pid)
		if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil && i == 0 {
			b.Logf("a guest's QEMU (pid %d) runs in the cgroups %s", pid, strings.ReplaceAll(strings.TrimSpace(string(cg)), "\n", " "))
		}
	}
	log := strings.Join(lines, "\n")
	if os.Getenv("TBOS_BENCH_LOG") != "" {
		b.Log(log)
	}
	if _, err := benchAction(b, s, name, api.ActionRequest{Command: api.Command{Name: api.CmdDown}}); err != nil {
		b.Fatal(err)
	}
	return took, log, cpu
}

// domainPIDs are the QEMU processes libvirt runs for the deployment.
func domainPIDs(name string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cmd, []byte("guest=tbos."+name+".")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// machineGroup mirrors where libvirt puts its QEMU processes on a host
// without systemd: one cgroup (v1 cpu controller) for all of them, which
// competes with the rest of the machine as one task group. The bare
// QEMUs go into a group of their own with the same weight, so that under
// other load both get the same share of the CPUs. It returns a function
// that moves a process in, and one that removes the group; without the
// machine group, both do nothing.
func machineGroup(b *testing.B, name string) (join func(pid int), remove func()) {
	nop := func(int) {}
	shares, err := os.ReadFile("/sys/fs/cgroup/cpu/machine/cpu.shares")
	if err != nil {
		return nop, func() {}
	}
	dir := "/sys/fs/cgroup/cpu/tbos-bench-" + name
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Logf("bare qemu stays in the root cgroup: %v", err)
		return nop, func() {}
	}
	os.WriteFile(filepath.Join(dir, "cpu.shares"), shares, 0o644)
	return func(pid int) {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
				b.Logf("bare qemu %d: cgroup: %v", pid, err)
			}
		}, func() {
			if err := os.Remove(dir); err != nil {
				b.Logf("cgroup %s: %v", dir, err)
			}
		}
}

// bareCloudBoot boots every guest of the deployment with bare QEMU at
// once: an overlay on image, the guest's seed and MAC, its SSH port
// forwarded from loopback by QEMU's user network; it returns when the last
// one is ready (SSH answers and cloud-init is done). The overlays are made
// inside the timing, as up makes its linked clones.
func bareCloudBoot(ctx context.Context, b *testing.B, qemu, accel, image string, s *server, name string) (time.Duration, float64, error) {
	raw, err := s.c.State(ctx, name)
	if err != nil {
		return 0, 0, err
	}
	var st topology.State
	if err := json.Unmarshal(raw, &st); err != nil {
		return 0, 0, err
	}
	work := filepath.Join(s.dataDir, "generated", name)
	key, err := sshkey.Load(work)
	if err != nil {
		return 0, 0, err
	}
	dir := b.TempDir()
	join, remove := machineGroup(b, name)
	defer remove()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		procs []*exec.Cmd
	)
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	start := time.Now()
	for _, g := range st.Guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := bareGuest(ctx, qemu, accel, image, dir, work, g, key.Signer, join)
			mu.Lock()
			defer mu.Unlock()
			if p != nil {
				procs = append(procs, p)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if len(errs) > 0 {
		return 0, 0, errs[0]
	}
	cpu := 0.0
	for _, p := range procs {
		cpu += cpuSeconds(b, p.Process.Pid)
	}
	return took, cpu, nil
}

// bareGuest boots one guest and returns its QEMU, still running, once the
// guest is ready.
func bareGuest(ctx context.Context, qemu, accel, image, dir, work string, g topology.Guest, signer ssh.Signer, join func(int)) (*exec.Cmd, error) {
	overlay := filepath.Join(dir, g.Name+".qcow2")
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, overlay).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("overlay: %v: %s", err, out)
	}
	port := 0
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	ifc := g.Interfaces[0]
	addr, _, _ := strings.Cut(ifc.Address, "/")
	console := filepath.Join(dir, g.Name+".console")
	cmd := exec.Command(qemu,
		"-accel", accel, "-m", fmt.Sprint(benchVMMemoryMB), "-smp", fmt.Sprint(benchVMCPUs),
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "file:"+console,
		"-drive", "file="+overlay+",if=virtio,format=qcow2,discard=unmap",
		"-drive", "file="+filepath.Join(work, "libvirt", g.Name, "seed.img")+",if=virtio,format=raw,readonly=on",
		// QEMU's user network on the guest's subnet: loopback reaches the
		// guest's SSH at its own static address, and nothing leaves.
		"-netdev", fmt.Sprintf("user,id=n0,net=10.0.0.0/24,host=10.0.0.2,restrict=on,hostfwd=tcp:127.0.0.1:%d-%s:22", port, addr),
		"-device", "virtio-net-pci,netdev=n0,mac="+ifc.MAC,
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	join(cmd.Process.Pid)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: time.Second}
	for {
		if c, err := ssh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), cfg); err == nil {
			sess, err := c.NewSession()
			if err == nil {
				// Exits 0 (done), 1 or 2 (done with errors) once
				// cloud-init has finished; a lost session (sshd
				// restarted by cloud-init) means dial again.
				err = sess.Run("cloud-init status --wait >/dev/null")
				var exit *ssh.ExitError
				if err == nil || errors.As(err, &exit) && exit.ExitStatus() <= 2 {
					c.Close()
					return cmd, nil
				}
			}
			c.Close()
		}
		select {
		case <-wctx.Done():
			data, _ := os.ReadFile(console)
			return cmd, fmt.Errorf("bare qemu %s: not ready: %w\n%s", g.Name, wctx.Err(), tailText(data, 2000))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func tailText(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
