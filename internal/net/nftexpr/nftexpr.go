// Package nftexpr builds the nftables expressions that more than one of
// TestbedOS's tables match packets with: IPv4 prefixes and interface names.
package nftexpr

import (
	"net"
	"net/netip"

	"github.com/google/nftables/expr"
)

// MatchPrefix compares the IPv4 header's address at offset (12 source, 16
// destination) with prefix p.
func MatchPrefix(offset uint32, p netip.Prefix) []expr.Any {
	mask := net.CIDRMask(p.Bits(), 32)
	addr := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
	}
}

// IfnameIs compares an interface name (key IIFNAME or OIFNAME) with name,
// terminating NUL included.
func IfnameIs(key expr.MetaKey, name string) []expr.Any {
	if name == "" {
		return nil
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: append([]byte(name), 0)},
	}
}

// IfnameIsNot is IfnameIs negated.
func IfnameIsNot(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: append([]byte(name), 0)},
	}
}
