package e2e

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

const oneChattyGuest = `machines:
  - name: web
    network:
      - switch: sw0
        ip: 10.0.0.10
    netns:
      setup_script: chatty.sh
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// TestLongLineDoesNotEatTheDaemon is issue 7 defect 5: a setup script
// printing 20 MB without a newline, on a server whose logs are capped at 4
// MiB. The action ends quickly, the log stays within the cap and says what
// it dropped, the daemon's memory stays modest, and the CLI prints and
// follows the log whole, both the same way.
func TestLongLineDoesNotEatTheDaemon(t *testing.T) {
	nettest.RequireRoot(t)
	const logCap = 4 << 20
	s := startServer(t, "TESTBEDOS_LOG_MAX_BYTES=4MiB")
	dir := project(t, oneChattyGuest, map[string]string{
		"chatty.sh": "#!/bin/sh\necho before\nhead -c 20000000 /dev/zero | tr '\\0' x\necho\necho after\n",
	})
	name := deployment(t, s, "long", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))

	start := time.Now()
	o, followed, id := act(t, s, name, cmd(api.CmdUp))
	took := time.Since(start)
	if o.ErrorCode != 0 {
		t.Fatalf("up failed (code %d): %s", o.ErrorCode, strings.Join(followed[len(followed)-3:], "\n"))
	}
	t.Cleanup(func() { act(t, s, name, cmd(api.CmdDown)) })
	if took > 60*time.Second {
		t.Errorf("up took %s", took)
	}

	e, err := s.c.LogEntry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(e.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > logCap+4<<10 {
		t.Errorf("the log is %d bytes, cap %d", len(data), logCap)
	}
	fileLines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, l := range fileLines {
		if len(l) > 64<<10+100 {
			t.Fatalf("line %d of the log has %d bytes", i, len(l))
		}
	}
	last := fileLines[len(fileLines)-1]
	if !strings.Contains(last, "log cap of 4194304 bytes reached: dropped ") || !strings.HasSuffix(last, " lines") {
		t.Errorf("the log's last line %q does not say what was dropped", last)
	}
	if len(followed) != len(fileLines) {
		t.Errorf("the live follower got %d lines, the file has %d", len(followed), len(fileLines))
	}

	// VmHWM: the most resident memory the daemon ever had.
	status, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			t.Logf("up took %s; daemon peak RSS %d MB (race detector on)", took, kb>>10)
			if kb > 150<<10 {
				t.Errorf("daemon peak RSS %d MB", kb>>10)
			}
		}
	}

	code, printed := kvmCompose(t, s, dir, "logs", id)
	if code != 0 {
		t.Fatalf("kvm-compose logs: exit %d", code)
	}
	printedLines := strings.Split(strings.TrimSuffix(printed, "\n"), "\n")
	if len(printedLines) != len(fileLines) {
		t.Fatalf("kvm-compose logs printed %d lines, the file has %d", len(printedLines), len(fileLines))
	}
	for i := range fileLines {
		_, want, _ := strings.Cut(fileLines[i], " ")
		ts, got, _ := strings.Cut(printedLines[i], " ")
		if got != want || len(ts) != len("15:04:05.000") {
			t.Fatalf("line %d printed as %.80q, the file has %.80q", i, printedLines[i], fileLines[i])
		}
	}
	code, followOut := kvmCompose(t, s, dir, "logs", id, "--follow")
	if code != 0 {
		t.Fatalf("kvm-compose logs --follow: exit %d\n%.2000s", code, followOut)
	}
	if followOut != printed {
		t.Errorf("logs --follow printed %d bytes, logs %d: one format for both", len(followOut), len(printed))
	}
}
