package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"
)

// legacyTables adds and removes the accept rule in the legacy x_tables
// filter tables, which netlink cannot reach.
type legacyTables interface {
	allow(log *slog.Logger, bridge string) error
	remove(log *slog.Logger, bridge string) error
}

// systemLegacyTables runs the iptables binaries when the kernel says a
// legacy filter table is in use (/proc/net/ip{,6}_tables_names lists it).
type systemLegacyTables struct{}

var _ legacyTables = systemLegacyTables{}

type legacyFamily struct {
	names    string   // /proc file listing the legacy tables in use
	binaries []string // preferred first
}

var legacyFamilies = []legacyFamily{
	{"/proc/net/ip_tables_names", []string{"iptables-legacy", "iptables"}},
	{"/proc/net/ip6_tables_names", []string{"ip6tables-legacy", "ip6tables"}},
}

func (systemLegacyTables) allow(log *slog.Logger, bridge string) error {
	var errs []error
	for _, fam := range legacyFamilies {
		bin, ok := fam.binary(log, bridge)
		if !ok {
			continue
		}
		if err := runIptables(bin, "-C", bridge); err == nil {
			continue // already there
		}
		if err := runIptables(bin, "-I", bridge); err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info("firewall: legacy iptables filter table in use, inserted FORWARD accept rule with the binary",
			"binary", bin, "bridge", bridge, "rule", "-I FORWARD -i "+bridge+" -o "+bridge+" -j ACCEPT")
	}
	return errors.Join(errs...)
}

func (systemLegacyTables) remove(log *slog.Logger, bridge string) error {
	for _, fam := range legacyFamilies {
		bin, ok := fam.binary(nil, bridge)
		if !ok {
			continue
		}
		// -D removes one copy per call; stop when none is left.
		for removed := 0; removed < 16; removed++ {
			if err := runIptables(bin, "-D", bridge); err != nil {
				if removed > 0 {
					log.Info("firewall: removed legacy iptables FORWARD accept rule", "binary", bin, "bridge", bridge, "rules", removed)
				}
				break
			}
		}
	}
	return nil
}

// binary returns the iptables binary to use for this family when its legacy
// filter table is in use. When it is in use but no usable binary exists, it
// says so in log (if not nil).
func (fam legacyFamily) binary(log *slog.Logger, bridge string) (string, bool) {
	data, err := os.ReadFile(fam.names)
	if err != nil || !hasLine(data, "filter") {
		return "", false
	}
	for _, name := range fam.binaries {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		// A plain iptables may be the nf_tables flavour, which cannot
		// reach the legacy table (and the nftables path already covered
		// its own tables).
		out, _ := exec.Command(path, "-V").Output()
		if bytes.Contains(out, []byte("nf_tables")) {
			continue
		}
		return path, true
	}
	if log != nil {
		log.Warn("firewall: a legacy x_tables filter table is in use but no legacy iptables binary was found; forwarded traffic on the bridge may be dropped",
			"table", fam.names, "bridge", bridge)
	}
	return "", false
}

func runIptables(bin, op, bridge string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"-w", "10", op, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func hasLine(data []byte, line string) bool {
	for l := range strings.Lines(string(data)) {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
