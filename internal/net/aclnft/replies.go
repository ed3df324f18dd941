package aclnft

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// How allow-related lets replies back. The bridge family cannot use
// conntrack here (nf_conntrack_bridge is not built: a "ct" expression in a
// bridge table is refused), but br_netfilter hands bridged IPv4 (and IPv6)
// to the IP hooks when net.bridge.bridge-nf-call-iptables (ip6tables) is 1,
// and conntrack runs there. So where it does, a table of the inet family
// hooked at prerouting, after conntrack, sets one bit of the packet's mark
// (repliesMark) on packets that enter through a bridge and belong to a
// connection conntrack has seen both ways or that is related to one
// (ct state established,related); the bit is cleared on every other one.
// The bridge table's chains of a switch with allow-related rules start
// with "mark has the bit: return". A connection is only confirmed once its
// first packet has passed every hook, so a first packet the ACLs drop
// leaves nothing to reply to, and a packet shaped like a reply that
// belongs to no connection is judged by the rules like any other.
//
// Where the IP hooks do not see bridged traffic of a family, replies of
// that family are let through statelessly: each allow-related match is
// mirrored (addresses, ports, inport and outport swapped) into a rule
// ahead of all others in both directions, which lets anything of the
// replies' shape through (a packet from source port 80 to anyone, when
// "tcp.dst == 80" is allowed).

// repliesMark is the bit of the packet mark that says "a reply conntrack
// knows": set and read only by this package's tables, on bridged packets.
const repliesMark uint32 = 0x00200000

// Replies says, per IP family, whether conntrack sees this host's bridged
// traffic (true: allow-related is stateful) or not (the stateless mirror).
type Replies struct {
	IPv4, IPv6 bool
}

var _ fmt.Stringer = Replies{}

// sysctl is where br_netfilter's switches are read; a variable for tests.
var sysctl = "/proc/sys/net/bridge/"

// TrackedReplies reports how allow-related works in the network namespace
// of the calling thread: /proc/sys/net is that namespace's.
func TrackedReplies() Replies {
	on := func(name string) bool {
		b, err := os.ReadFile(sysctl + name)
		return err == nil && strings.TrimSpace(string(b)) == "1"
	}
	return Replies{IPv4: on("bridge-nf-call-iptables"), IPv6: on("bridge-nf-call-ip6tables")}
}

// Any reports whether some family is tracked (the inet table is needed).
func (r Replies) Any() bool { return r.IPv4 || r.IPv6 }

// String says what passes, for the action log.
func (r Replies) String() string {
	switch {
	case r.IPv4 && r.IPv6:
		return "allow-related is stateful (conntrack sees bridged IPv4 and IPv6 through br_netfilter)"
	case r.IPv4:
		return "allow-related is stateful for IPv4 (conntrack through br_netfilter); for IPv6 stateless, " +
			"mirrored replies (net.bridge.bridge-nf-call-ip6tables is not 1)"
	case r.IPv6:
		return "allow-related is stateful for IPv6 (conntrack through br_netfilter); for IPv4 stateless, " +
			"mirrored replies (net.bridge.bridge-nf-call-iptables is not 1)"
	}
	return "allow-related is stateless: mirrored rules let the replies' shape through " +
		"(no br_netfilter, or net.bridge.bridge-nf-call-iptables is not 1)"
}

// metaKeyIIFKind is NFT_META_IIFKIND (the kind of the input interface,
// "bridge" for what br_netfilter hands to the IP hooks), which x/sys/unix
// does not name.
const metaKeyIIFKind expr.MetaKey = 26

// repliesPriority runs after conntrack (-200) has looked the packet up.
var repliesPriority = nftables.ChainPriorityRef(-150)

// repliesComment tags the bridge table's rule that lets tracked replies
// through, so HasTable knows the inet table belongs with it.
const repliesComment = "testbedos: replies tracked by conntrack"

// addRepliesTable adds to conn the inet table name that marks tracked
// replies entering through a bridge.
func addRepliesTable(conn *nftables.Conn, name string) {
	t := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: name})
	accept := nftables.ChainPolicyAccept
	ch := conn.AddChain(&nftables.Chain{Table: t, Name: "prerouting", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: repliesPriority, Policy: &accept})
	bridged := []expr.Any{
		&expr.Meta{Key: metaKeyIIFKind, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("bridge")},
	}
	// meta mark set meta mark & ^bit, then | bit for established,related.
	setMark := func(mask, xor uint32) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, mask), Xor: binary.NativeEndian.AppendUint32(nil, xor)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		}
	}
	conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(append([]expr.Any{}, bridged...), setMark(^repliesMark, 0)...)})
	tracked := append(append([]expr.Any{}, bridged...),
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED),
			Xor:  make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	)
	conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(tracked, setMark(^repliesMark, repliesMark)...)})
}

// trackedReplyExprs is the bridge rule "the mark has the bit: return".
func trackedReplyExprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, repliesMark), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}
}
