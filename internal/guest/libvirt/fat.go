package libvirt

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// A FAT12 file system image with a few files in its root folder and long
// (VFAT) names: what cloud-init's NoCloud seed needs, written without
// mkfs.vfat or genisoimage. The geometry is that of a 1.44 MB floppy, which
// every FAT reader knows.
const (
	fatSectorSize   = 512
	fatSectors      = 2880
	fatReserved     = 1
	fatCount        = 2
	fatSectorsPer   = 9 // per FAT: 2847 clusters of 12 bits
	fatRootEntries  = 224
	fatRootSectors  = fatRootEntries * 32 / fatSectorSize
	fatFirstData    = fatReserved + fatCount*fatSectorsPer + fatRootSectors
	fatClusters     = fatSectors - fatFirstData // one sector per cluster
	fatMedia        = 0xF0
	fatEndOfChain   = 0xFFF
	fatAttrArchive  = 0x20
	fatAttrLabel    = 0x08
	fatAttrLongName = 0x0F
	fatLFNChars     = 13
)

// fatFile is one file of the root folder.
type fatFile struct {
	Name string
	Data []byte
}

// fatImage returns the image of a FAT12 file system labelled label (at most
// 11 characters, stored upper-case) holding files, stamped with mtime.
func fatImage(label string, files []fatFile, mtime time.Time) ([]byte, error) {
	label = strings.ToUpper(label)
	if len(label) == 0 || len(label) > 11 {
		return nil, fmt.Errorf("fat: label %q must have 1 to 11 characters", label)
	}
	img := make([]byte, fatSectors*fatSectorSize)
	writeBootSector(img[:fatSectorSize], label)

	fat := make([]byte, fatSectorsPer*fatSectorSize)
	setFAT12(fat, 0, 0xF00|fatMedia)
	setFAT12(fat, 1, fatEndOfChain)

	root := make([]byte, 0, fatRootEntries*32)
	root = append(root, dirEntry(padName(label), fatAttrLabel, 0, 0, mtime)...)
	next := 2 // first data cluster
	for i, f := range files {
		if err := checkLongName(f.Name); err != nil {
			return nil, err
		}
		clusters := (len(f.Data) + fatSectorSize - 1) / fatSectorSize
		if next-2+clusters > fatClusters {
			return nil, fmt.Errorf("fat: the files do not fit in %d KiB", fatClusters*fatSectorSize/1024)
		}
		first := 0
		if clusters > 0 {
			first = next
			for c := range clusters {
				cl := next + c
				v := cl + 1
				if c == clusters-1 {
					v = fatEndOfChain
				}
				setFAT12(fat, cl, v)
				off := (fatFirstData + cl - 2) * fatSectorSize
				end := min((c+1)*fatSectorSize, len(f.Data))
				copy(img[off:], f.Data[c*fatSectorSize:end])
			}
			next += clusters
		}
		short := fmt.Sprintf("TB%06d   ", i+1) // 8.3 alias; the long name is what readers show
		root = append(root, longNameEntries(f.Name, shortNameChecksum(short))...)
		root = append(root, dirEntry(short, fatAttrArchive, first, len(f.Data), mtime)...)
	}
	if len(root) > fatRootEntries*32 {
		return nil, fmt.Errorf("fat: too many files for the root folder")
	}
	for i := range fatCount {
		copy(img[(fatReserved+i*fatSectorsPer)*fatSectorSize:], fat)
	}
	copy(img[(fatReserved+fatCount*fatSectorsPer)*fatSectorSize:], root)
	return img, nil
}

func writeBootSector(b []byte, label string) {
	copy(b[0:], []byte{0xEB, 0x3C, 0x90}) // jump over the BPB
	copy(b[3:11], "TESTBEDO")
	le := binary.LittleEndian
	le.PutUint16(b[11:], fatSectorSize)
	b[13] = 1 // sectors per cluster
	le.PutUint16(b[14:], fatReserved)
	b[16] = fatCount
	le.PutUint16(b[17:], fatRootEntries)
	le.PutUint16(b[19:], fatSectors)
	b[21] = fatMedia
	le.PutUint16(b[22:], fatSectorsPer)
	le.PutUint16(b[24:], 18) // sectors per track
	le.PutUint16(b[26:], 2)  // heads
	b[36] = 0x00             // drive number
	b[38] = 0x29             // extended boot signature: the next three fields are valid
	le.PutUint32(b[39:], volumeID(label))
	copy(b[43:54], padName(label))
	copy(b[54:62], "FAT12   ")
	// Not bootable: print nothing, halt (int 0x18 asks the BIOS for the
	// next boot device).
	copy(b[62:], []byte{0xCD, 0x18, 0xF4, 0xEB, 0xFD})
	b[510], b[511] = 0x55, 0xAA
}

// volumeID is stable for a label, so that equal inputs give equal images.
func volumeID(label string) uint32 {
	h := uint32(2166136261)
	for _, c := range []byte(label) {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

func padName(s string) string { return (s + "           ")[:11] }

// setFAT12 sets entry n of a FAT12 table to v (12 bits).
func setFAT12(fat []byte, n, v int) {
	off := n * 3 / 2
	if n%2 == 0 {
		fat[off] = byte(v)
		fat[off+1] = fat[off+1]&0xF0 | byte(v>>8)&0x0F
	} else {
		fat[off] = fat[off]&0x0F | byte(v<<4)&0xF0
		fat[off+1] = byte(v >> 4)
	}
}

// fatTime packs t into FAT's date and time words (local time as written:
// FAT has no zone; 2-second resolution; years 1980–2107).
func fatTime(t time.Time) (date, clock uint16) {
	if t.Year() < 1980 || t.Year() > 2107 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	clock = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, clock
}

func dirEntry(name11 string, attr byte, cluster, size int, mtime time.Time) []byte {
	e := make([]byte, 32)
	copy(e[0:11], name11)
	e[11] = attr
	date, clock := fatTime(mtime)
	le := binary.LittleEndian
	le.PutUint16(e[14:], clock) // created
	le.PutUint16(e[16:], date)
	le.PutUint16(e[18:], date)  // accessed
	le.PutUint16(e[22:], clock) // written
	le.PutUint16(e[24:], date)
	le.PutUint16(e[26:], uint16(cluster))
	le.PutUint32(e[28:], uint32(size))
	return e
}

func shortNameChecksum(name11 string) byte {
	var sum byte
	for i := range 11 {
		sum = (sum&1)<<7 + sum>>1 + name11[i]
	}
	return sum
}

// longNameEntries are the VFAT entries of a long name, in the order they
// are stored: the last part first, flagged 0x40.
func longNameEntries(name string, checksum byte) []byte {
	units := utf16.Encode([]rune(name))
	n := (len(units) + fatLFNChars - 1) / fatLFNChars
	if rem := len(units) % fatLFNChars; rem != 0 {
		units = append(units, 0) // terminator, then 0xFFFF padding
		for len(units)%fatLFNChars != 0 {
			units = append(units, 0xFFFF)
		}
	}
	out := make([]byte, 0, n*32)
	le := binary.LittleEndian
	for seq := n; seq >= 1; seq-- {
		part := units[(seq-1)*fatLFNChars : seq*fatLFNChars]
		e := make([]byte, 32)
		e[0] = byte(seq)
		if seq == n {
			e[0] |= 0x40
		}
		e[11] = fatAttrLongName
		e[13] = checksum
		for i, u := range part {
			var off int
			switch {
			case i < 5:
				off = 1 + 2*i
			case i < 11:
				off = 14 + 2*(i-5)
			default:
				off = 28 + 2*(i-11)
			}
			le.PutUint16(e[off:], u)
		}
		out = append(out, e...)
	}
	return out
}

func checkLongName(name string) error {
	if name == "" || len(name) > 255 || strings.ContainsAny(name, `/\:*?"<>|`) || name == "." || name == ".." {
		return fmt.Errorf("fat: bad file name %q", name)
	}
	return nil
}
