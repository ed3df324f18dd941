package capture

import (
	"errors"
	"testing"

	"golang.org/x/net/bpf"
)

// frame makes an Ethernet+IPv4 frame of protocol proto from src to dst,
// with ports for TCP and UDP.
func frame(proto byte, src, dst [4]byte, sport, dport uint16) []byte {
	f := make([]byte, 14+20+8)
	f[12], f[13] = 0x08, 0x00
	ip := f[14:]
	ip[0] = 0x45
	ip[9] = proto
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	l4 := ip[20:]
	l4[0], l4[1] = byte(sport>>8), byte(sport)
	l4[2], l4[3] = byte(dport>>8), byte(dport)
	return f
}

func TestCompileFilter(t *testing.T) {
	a, b, c := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 3}
	icmp := frame(1, a, b, 0, 0)
	web := frame(6, a, b, 40000, 80)
	dns := frame(17, c, b, 53, 40000)
	arp := make([]byte, 42)
	arp[12], arp[13] = 0x08, 0x06
	tests := []struct {
		expr string
		want []bool // icmp, web, dns, arp
	}{
		{"icmp", []bool{true, false, false, false}},
		{"tcp", []bool{false, true, false, false}},
		{"udp", []bool{false, false, true, false}},
		{"arp", []bool{false, false, false, true}},
		{"ip", []bool{true, true, true, false}},
		{"port 80", []bool{false, true, false, false}},
		{"tcp port 80", []bool{false, true, false, false}},
		{"udp port 80", []bool{false, false, false, false}},
		{"src port 53", []bool{false, false, true, false}},
		{"dst port 53", []bool{false, false, false, false}},
		{"host 10.0.0.3", []bool{false, false, true, false}},
		{"host 10.0.0.2", []bool{true, true, true, false}},
		{"src host 10.0.0.1 and tcp", []bool{false, true, false, false}},
		{"icmp && dst host 10.0.0.2", []bool{true, false, false, false}},
		{"tcp or udp", []bool{false, true, true, false}},
		{"icmp || arp", []bool{true, false, false, true}},
		{"not icmp", []bool{false, true, true, true}},
		{"! ip", []bool{false, false, false, true}},
		{"not port 80", []bool{true, false, true, true}},
		{"not (tcp or udp)", []bool{true, false, false, true}},
		{"(tcp or udp) and not port 53", []bool{false, true, false, false}},
		// and and or are equal and group from the left, as in tcpdump.
		{"icmp or tcp and port 80", []bool{false, true, false, false}},
		{"tcp and port 80 or icmp", []bool{true, true, false, false}},
		{"(icmp or tcp) and src host 10.0.0.1", []bool{true, true, false, false}},
		{"host 10.0.0.3 or (tcp and dst port 80)", []bool{false, true, true, false}},
		{"not not arp", []bool{false, false, false, true}},
		{"(port 80 or port 53)", []bool{false, true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			f, err := CompileFilter(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			var prog []bpf.Instruction
			for _, r := range f {
				prog = append(prog, r.Disassemble())
			}
			vm, err := bpf.NewVM(prog)
			if err != nil {
				t.Fatal(err)
			}
			for i, pkt := range [][]byte{icmp, web, dns, arp} {
				n, err := vm.Run(pkt)
				if err != nil {
					t.Fatal(err)
				}
				if got := n > 0; got != tt.want[i] {
					t.Errorf("packet %d: match = %v, want %v", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestCompileFilterRefuses(t *testing.T) {
	for _, expr := range []string{"ether host aa:bb", "port x", "host ::1", "icmp and", "tcp or", "not", "(tcp", "tcp)", "()", "tcp udp"} {
		if _, err := CompileFilter(expr); !errors.Is(err, ErrFilter) {
			t.Errorf("%q: err = %v, want ErrFilter", expr, err)
		}
	}
	if f, err := CompileFilter("  "); f != nil || err != nil {
		t.Errorf("empty filter = %v, %v; want nil, nil", f, err)
	}
}
