package libvirt

import (
	"strings"
	"testing"
)

// The test vectors of the SHA-crypt specification.
func TestSHA512Crypt(t *testing.T) {
	for _, c := range []struct {
		salt, password string
		rounds         int
		want           string
	}{
		{"saltstring", "Hello world!", 5000, "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"saltstringsaltstring", "Hello world!", 10000, "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"toolongsaltstring", "This is just a test", 5000, "$6$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	} {
		if got := sha512Crypt(c.password, c.salt, c.rounds); got != c.want {
			t.Errorf("sha512Crypt(%q, %q, %d) = %s, want %s", c.password, c.salt, c.rounds, got, c.want)
		}
	}
	h, err := hashPassword("secret")
	if err != nil || !strings.HasPrefix(h, "$6$") || len(h) != 3+16+1+86 || strings.Contains(h, "secret") {
		t.Errorf("hashPassword: %q %v", h, err)
	}
	if h2, _ := hashPassword("secret"); h2 == h {
		t.Error("two hashes of one password share their salt")
	}
}
