package libvirt

import (
	"crypto/rand"
	"crypto/sha512"
	"hash"
	"strings"
)

// The SHA-512 crypt scheme ("$6$", Ulrich Drepper's specification): the
// password hash cloud-init writes to /etc/shadow as given, so the seed
// never holds the password itself.
const (
	shaCryptRounds = 5000 // the specification's default, which is not written
	shaCryptSalt   = 16
	cryptAlphabet  = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// hashPassword returns the "$6$salt$hash" of password with a random salt.
func hashPassword(password string) (string, error) {
	raw := make([]byte, shaCryptSalt)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	salt := make([]byte, shaCryptSalt)
	for i, b := range raw {
		salt[i] = cryptAlphabet[int(b)%len(cryptAlphabet)]
	}
	return sha512Crypt(password, string(salt), shaCryptRounds), nil
}

// sha512Crypt is the specification's algorithm; rounds other than the
// default are written into the result.
func sha512Crypt(password, salt string, rounds int) string {
	if len(salt) > shaCryptSalt {
		salt = salt[:shaCryptSalt]
	}
	pw, sl := []byte(password), []byte(salt)
	sum := func(parts ...[]byte) []byte {
		h := sha512.New()
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	// repeat fills n bytes with copies of b (the specification's P and S
	// sequences, and the digest B added for the password's length).
	repeat := func(h hash.Hash, b []byte, n int) {
		for ; n > len(b); n -= len(b) {
			h.Write(b)
		}
		h.Write(b[:n])
	}
	b := sum(pw, sl, pw)
	a := sha512.New()
	a.Write(pw)
	a.Write(sl)
	repeat(a, b, len(pw))
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(b)
		} else {
			a.Write(pw)
		}
	}
	digest := a.Sum(nil)

	dp := sha512.New()
	for range len(pw) {
		dp.Write(pw)
	}
	p := make([]byte, 0, len(pw))
	h := dp.Sum(nil)
	for len(p) < len(pw) {
		p = append(p, h[:min(len(h), len(pw)-len(p))]...)
	}
	ds := sha512.New()
	for range 16 + int(digest[0]) {
		ds.Write(sl)
	}
	h = ds.Sum(nil)
	s := append([]byte(nil), h[:len(sl)]...)

	for i := range rounds {
		c := sha512.New()
		if i&1 != 0 {
			c.Write(p)
		} else {
			c.Write(digest)
		}
		if i%3 != 0 {
			c.Write(s)
		}
		if i%7 != 0 {
			c.Write(p)
		}
		if i&1 != 0 {
			c.Write(digest)
		} else {
			c.Write(p)
		}
		digest = c.Sum(digest[:0])
	}

	var out strings.Builder
	out.WriteString("$6$")
	if rounds != shaCryptRounds {
		out.WriteString("rounds=")
		out.WriteString(itoa(rounds))
		out.WriteString("$")
	}
	out.WriteString(salt)
	out.WriteString("$")
	enc := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	// The specification's byte order of the final digest: groups of
	// bytes i, i+21 and i+42, rotated by one place from group to group.
	for i := range 21 {
		g := [3]byte{digest[i], digest[i+21], digest[i+42]}
		r := i % 3
		enc(g[r], g[(r+1)%3], g[(r+2)%3], 4)
	}
	enc(0, 0, digest[63], 2)
	return out.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
