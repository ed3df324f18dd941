package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"golang.org/x/net/bpf"
)

// Filter is a compiled capture filter: classic BPF for SO_ATTACH_FILTER;
// nil captures everything.
type Filter []bpf.RawInstruction

// ErrFilter: a capture filter CompileFilter does not understand.
var ErrFilter = errors.New("unsupported capture filter")

// FilterHelp says what CompileFilter understands.
const FilterHelp = `primitives ip, ip6, arp, icmp, icmp6, tcp, udp, [src|dst] host IPv4, [tcp|udp] [src|dst] port N, ` +
	`combined with and (&&), or (||), not (!) and parentheses`

// snapLen is the most of a packet a capture keeps.
const snapLen = 262144

// Jump targets of a primitive's instructions, resolved when the program
// is laid out; other skips are relative, inside the primitive.
const (
	toReject   = 255 // the primitive does not match
	toBlockEnd = 254 // the primitive matches
)

const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	etherARP  = 0x0806
)

func ethType(t uint32) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: t, SkipFalse: toReject},
	}
}

func ipProto(p uint32) []bpf.Instruction {
	return append(ethType(etherIPv4),
		bpf.LoadAbsolute{Off: 23, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipFalse: toReject})
}

// primitive compiles the primitive at the start of words and returns the
// words after it.
func primitive(w []string) ([]bpf.Instruction, []string, error) {
	switch w[0] {
	case "ip":
		return ethType(etherIPv4), w[1:], nil
	case "ip6":
		return ethType(etherIPv6), w[1:], nil
	case "arp":
		return ethType(etherARP), w[1:], nil
	case "icmp":
		return ipProto(1), w[1:], nil
	case "icmp6":
		return append(ethType(etherIPv6),
			bpf.LoadAbsolute{Off: 20, Size: 1},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 58, SkipFalse: toReject}), w[1:], nil
	case "tcp", "udp":
		proto := uint32(6)
		if w[0] == "udp" {
			proto = 17
		}
		if len(w) > 1 && (w[1] == "port" || w[1] == "src" || w[1] == "dst") {
			return port(w[1:], proto)
		}
		return ipProto(proto), w[1:], nil
	case "port":
		return port(w, 0)
	case "src", "dst":
		if len(w) > 1 && w[1] == "host" {
			return host(w[2:], w[0])
		}
		if len(w) > 1 && w[1] == "port" {
			return port(w, 0)
		}
		return nil, nil, fmt.Errorf("%q must be followed by host or port", w[0])
	case "host":
		return host(w[1:], "")
	}
	return nil, nil, fmt.Errorf("%q is not understood", w[0])
}

// host compiles "host A" (dir "", "src" or "dst"); w starts at the address.
func host(w []string, dir string) ([]bpf.Instruction, []string, error) {
	if len(w) == 0 {
		return nil, nil, errors.New("host needs an IPv4 address")
	}
	a, err := netip.ParseAddr(w[0])
	if err != nil || !a.Is4() {
		return nil, nil, fmt.Errorf("host %q is not an IPv4 address", w[0])
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ins := ethType(etherIPv4)
	switch dir {
	case "src":
		ins = append(ins, bpf.LoadAbsolute{Off: 26, Size: 4}, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipFalse: toReject})
	case "dst":
		ins = append(ins, bpf.LoadAbsolute{Off: 30, Size: 4}, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipFalse: toReject})
	default:
		ins = append(ins,
			bpf.LoadAbsolute{Off: 26, Size: 4}, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: toBlockEnd},
			bpf.LoadAbsolute{Off: 30, Size: 4}, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipFalse: toReject})
	}
	return ins, w[1:], nil
}

// port compiles "[src|dst] port N" of proto (0: TCP or UDP); w starts at
// src, dst or port.
func port(w []string, proto uint32) ([]bpf.Instruction, []string, error) {
	dir := ""
	if w[0] == "src" || w[0] == "dst" {
		dir, w = w[0], w[1:]
	}
	if len(w) < 2 || w[0] != "port" {
		return nil, nil, errors.New("port needs a number: port N")
	}
	n, err := strconv.ParseUint(w[1], 10, 16)
	if err != nil {
		return nil, nil, fmt.Errorf("port %q is not a number from 0 to 65535", w[1])
	}
	ins := ethType(etherIPv4)
	ins = append(ins, bpf.LoadAbsolute{Off: 23, Size: 1})
	if proto != 0 {
		ins = append(ins, bpf.JumpIf{Cond: bpf.JumpEqual, Val: proto, SkipFalse: toReject})
	} else {
		ins = append(ins,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 1},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipFalse: toReject})
	}
	ins = append(ins,
		// Not a later fragment: those have no ports.
		bpf.LoadAbsolute{Off: 20, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: toReject},
		bpf.LoadMemShift{Off: 14}) // X = IPv4 header length
	v := uint32(n)
	switch dir {
	case "src":
		ins = append(ins, bpf.LoadIndirect{Off: 14, Size: 2}, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipFalse: toReject})
	case "dst":
		ins = append(ins, bpf.LoadIndirect{Off: 16, Size: 2}, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipFalse: toReject})
	default:
		ins = append(ins,
			bpf.LoadIndirect{Off: 14, Size: 2}, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: toBlockEnd},
			bpf.LoadIndirect{Off: 16, Size: 2}, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipFalse: toReject})
	}
	return ins, w[2:], nil
}
