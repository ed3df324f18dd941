package libvirt

import (
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
)

func TestStatsOf(t *testing.T) {
	rss := golibvirt.DomainMemoryStat{Tag: int32(golibvirt.DomainMemoryStatRss), Val: 2048}
	other := golibvirt.DomainMemoryStat{Tag: int32(golibvirt.DomainMemoryStatAvailable), Val: 99}
	for _, tc := range []struct {
		name    string
		mem     []golibvirt.DomainMemoryStat
		wantMem uint64
	}{
		{"no memory stats: the allocation", nil, 512 * 1024},
		{"rss wins", []golibvirt.DomainMemoryStat{other, rss}, 2048 * 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := statsOf(1_500_000_000, 512, tc.mem)
			if s.CPUSeconds != 1.5 || s.MemoryBytes != tc.wantMem {
				t.Errorf("statsOf = %+v, want 1.5 s and %d bytes", s, tc.wantMem)
			}
		})
	}
}
