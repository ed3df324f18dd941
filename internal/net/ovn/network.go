// Package ovn is the ovn network backend's view of one host: the OVN
// northbound database (logical switches, routers, DHCP, DNS, ACLs) and the
// local Open vSwitch database (guests' ports on the integration bridge),
// both through the OVSDB protocol with libovsdb, and the OVS/OVN daemons
// this package runs when the host's own are not running.
package ovn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"

	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/ovsdb"
)

// Options say where the host's OVS and OVN are.
type Options struct {
	// Dir is the folder of the daemons this package starts when the
	// host's own do not answer (<data>/ovn).
	Dir string
	// Chassis is this host's chassis name (the Open_vSwitch row's
	// system-id) when this package sets it up.
	Chassis string
	// Logger gets the daemons' restarts.
	Logger *slog.Logger
	// Netns, when set, is the named network namespace the daemons run in
	// (a host of a test).
	Netns string
	// EncapIP is this chassis's Geneve address (default 127.0.0.1, a
	// host of its own).
	EncapIP string
	// SBListen are further remotes of the southbound database
	// ("ptcp:6642:10.0.0.1"), for other chassis.
	SBListen []string
	// BridgeMappings are host.json's provider networks: network name →
	// the OVS bridge a localnet port naming it reaches (provider.go).
	BridgeMappings map[string]string
	// TLS, when set, are the files of the southbound database's SSL: on
	// the main its ovsdb-server's (SBListen with pssl:), on a chassis
	// ovn-controller's (a southbound at ssl:).
	TLS *TLSFiles
	// Underlay, when set, is the host's underlay link whose address
	// Geneve leaves from: on the userspace datapath it moves onto an OVS
	// bridge of its own (AddUnderlay) once OVS runs, and back at Close.
	Underlay *Underlay
}

// TLSFiles are SSL's files for OVSDB connections: this host's private key
// and certificate, and the certificates it trusts (CA).
type TLSFiles struct{ Key, Cert, CA string }

// args are the daemons' SSL options.
func (t *TLSFiles) args() []string {
	if t == nil {
		return nil
	}
	return []string{"--private-key=" + t.Key, "--certificate=" + t.Cert, "--ca-cert=" + t.CA}
}

// Underlay is the host's underlay link: NIC, its address CIDR, and the
// OVS bridge the address moves to (UnderlayBridge by default).
type Underlay struct{ Bridge, NIC, CIDR string }

// UnderlayBridge is the OVS bridge the underlay address moves onto.
const UnderlayBridge = "br-phy"

// Network is one host's OVS and OVN.
type Network struct {
	nb, ovs client.Client
	// chassis is the host's system-id; netdev: its bridges run the
	// userspace datapath (no openvswitch kernel module).
	chassis string
	netdev  bool
	// daemons are the ones this package started; nil when the host's own
	// run.
	daemons *Daemons
	ep      Endpoints
	// netns is the named network namespace the daemons run in; "" for
	// this process's.
	netns string
	// mappings are host.json's provider networks (Options.BridgeMappings).
	mappings map[string]string
	// underlay is the link moved onto an OVS bridge, moved back at Close.
	underlay *Underlay
}

// KernelDatapath reports whether the kernel has the openvswitch module;
// without it bridges use the userspace datapath (datapath_type=netdev).
func KernelDatapath() bool {
	_, err := os.Stat("/sys/module/openvswitch")
	return err == nil
}

// Open connects to the host's own OVS and OVN when both answer on their
// usual sockets, and otherwise starts them under o.Dir and sets this host
// up as a chassis of its own southbound database. Close stops what Open
// started.
func Open(ctx context.Context, o Options) (*Network, error) {
	n := &Network{netdev: !KernelDatapath(), ep: HostEndpoints(), netns: o.Netns, mappings: o.BridgeMappings}
	own := o.Netns != "" || !answers(n.ep.OVS) || !answers(n.ep.NB)
	if own {
		if o.Dir == "" {
			return nil, errors.New("ovn: the host's OVS and OVN do not run, and no folder was given to run them from")
		}
		n.daemons = &Daemons{Dir: o.Dir, Logger: o.Logger, Netns: o.Netns, SBListen: o.SBListen, TLS: o.TLS}
		n.ep = n.daemons.Endpoints()
		if err := n.daemons.StartDatabases(ctx); err != nil {
			n.daemons.Stop()
			return nil, fmt.Errorf("ovn: %w", err)
		}
	}
	err := n.open(ctx, o, own)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("ovn: %w", err)
	}
	return n, nil
}

func (n *Network) open(ctx context.Context, o Options, own bool) error {
	var err error
	if n.ovs, err = connect(ctx, ovsTables, n.ep.OVS); err != nil {
		return err
	}
	if own {
		if err := n.initSwitch(ctx, o.Chassis, n.ep.SB, o.EncapIP); err != nil {
			return err
		}
		if err := n.daemons.StartSwitch(ctx); err != nil {
			return err
		}
		if err := n.moveUnderlay(ctx, o.Underlay); err != nil {
			return err
		}
	}
	if n.nb, err = connect(ctx, nbTables, n.ep.NB); err != nil {
		return err
	}
	row, err := n.switchConfig()
	if err != nil {
		return err
	}
	n.chassis = row.ExternalIDs["system-id"]
	if n.chassis == "" {
		return errors.New("the Open_vSwitch row has no external_ids:system-id (the chassis name)")
	}
	return nil
}

// initSwitch makes the Open_vSwitch row when the database is new and
// points ovn-controller at the southbound database: chassis name, Geneve
// on loopback (a host of its own), and the userspace datapath where the
// kernel has no openvswitch module.
func (n *Network) initSwitch(ctx context.Context, chassis, sb, encapIP string) error {
	if chassis == "" {
		chassis, _ = os.Hostname()
	}
	if encapIP == "" {
		encapIP = "127.0.0.1"
	}
	ids := map[string]string{
		"system-id":      chassis,
		"ovn-remote":     sb,
		"ovn-encap-type": "geneve",
		"ovn-encap-ip":   encapIP,
		"hostname":       chassis,
		"ovn-bridge":     IntegrationBridge,
	}
	if n.netdev {
		ids["ovn-bridge-datapath-type"] = "netdev"
	}
	row, err := n.switchConfig()
	var ops []ovsdb.Operation
	if err != nil {
		ops, err = n.ovs.Create(&OpenvSwitch{UUID: "ovs", ExternalIDs: ids})
	} else {
		merged := maps.Clone(row.ExternalIDs)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, ids)
		row.ExternalIDs = merged
		ops, err = n.ovs.Where(row).Update(row, &row.ExternalIDs)
	}
	if err != nil {
		return err
	}
	if _, err := transact(ctx, n.ovs, ops...); err != nil {
		return fmt.Errorf("Open_vSwitch row: %w", err)
	}
	return waitFor(ctx, "the Open_vSwitch row", func() bool {
		r, err := n.switchConfig()
		return err == nil && r.ExternalIDs["system-id"] == chassis
	})
}

func (n *Network) switchConfig() (*OpenvSwitch, error) {
	var rows []OpenvSwitch
	if err := n.ovs.List(context.Background(), &rows); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errors.New("the local OVS database has no Open_vSwitch row")
	}
	return &rows[0], nil
}

// OpenChassis runs, under o.Dir (in o.Netns when set), Open vSwitch and an
// ovn-controller joined to the southbound database at sb ("tcp:IP:6642",
// or "ssl:IP:6642" with o.TLS), with Geneve from o.EncapIP: a host whose
// logical network another host's OVN holds. It has no northbound database:
// the logical-object methods are not for it. Close has ovn-controller
// remove its chassis from the southbound database.
func OpenChassis(ctx context.Context, o Options, sb string) (*Network, error) {
	if o.Dir == "" || sb == "" {
		return nil, errors.New("ovn: a chassis needs a folder and the southbound database's address")
	}
	n := &Network{netdev: !KernelDatapath(), netns: o.Netns, mappings: o.BridgeMappings}
	n.daemons = &Daemons{Dir: o.Dir, Logger: o.Logger, Netns: o.Netns, TLS: o.TLS, Chassis: true}
	n.ep = n.daemons.Endpoints()
	err := n.daemons.StartOVS(ctx)
	if err == nil {
		n.ovs, err = connect(ctx, ovsTables, n.ep.OVS)
	}
	if err == nil {
		err = n.initSwitch(ctx, o.Chassis, sb, o.EncapIP)
	}
	if err == nil {
		err = n.daemons.StartSwitch(ctx)
	}
	if err == nil {
		err = n.moveUnderlay(ctx, o.Underlay)
	}
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("ovn chassis: %w", err)
	}
	n.chassis = o.Chassis
	return n, nil
}

// ReloadSouthboundTLS starts the southbound database again, so that it
// trusts the certificates its CA file holds now (a member that joined).
func (n *Network) ReloadSouthboundTLS(ctx context.Context) error {
	if n.daemons == nil {
		return errors.New("ovn: the host's own southbound database is not this server's to restart")
	}
	return n.daemons.Restart(ctx, "ovnsb_db")
}

// Chassis is this host's chassis name.
func (n *Network) Chassis() string { return n.chassis }

// Userspace reports whether OVS runs its userspace datapath here.
func (n *Network) Userspace() bool { return n.netdev }

// Own reports whether the daemons are this package's (under Dir) rather
// than the host's.
func (n *Network) Own() bool { return n.daemons != nil }

// RunDir is the folder of the daemons' sockets.
func (n *Network) RunDir() string { return n.ep.Run }

// LogFile is the log of one of the daemons this package started.
func (n *Network) LogFile(daemon string) string { return filepath.Join(n.ep.Run, daemon+".log") }

// Close disconnects and stops the daemons Open started; an underlay
// address moved onto an OVS bridge goes back to its link.
func (n *Network) Close() {
	defer n.restoreUnderlay() // after ovn-controller has left
	if n.nb != nil {
		n.nb.Close()
	}
	if n.ovs != nil {
		n.ovs.Close()
	}
	if n.daemons != nil {
		n.daemons.Stop()
	}
}
