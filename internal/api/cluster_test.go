package api

import (
	"errors"
	"strings"
	"testing"
)

func TestHostConfigValidateNamesFields(t *testing.T) {
	good := HostConfig{Name: "h1", IP: "10.0.0.1", TestbedNIC: "eth0", CPUs: 1, MemoryMB: 1}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := HostConfig{Name: "H 1", IP: "0.0.0.0", TestbedNIC: "a/b", CPUs: 0, MemoryMB: -1}
	err := bad.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("%v is not ErrInvalid", err)
	}
	for _, field := range []string{"name", "ip", "testbed_nic", "cpus", "memory_mb"} {
		if !strings.Contains(err.Error(), field+" ") {
			t.Errorf("the error does not name %s: %v", field, err)
		}
	}
}

func TestJoinRequestValidate(t *testing.T) {
	host := HostConfig{Name: "c1", IP: "10.0.0.2", TestbedNIC: "eth0", CPUs: 1, MemoryMB: 1}
	ok := JoinRequest{Name: "c1", Host: host, Fingerprint: "sha256:ab", URL: "https://10.0.0.2:3355"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*JoinRequest){
		"name differs from host": func(j *JoinRequest) { j.Name = "c2" },
		"bad name":               func(j *JoinRequest) { j.Name, j.Host.Name = "C1", "C1" },
		"plain http":             func(j *JoinRequest) { j.URL = "http://10.0.0.2:3355" },
		"no port":                func(j *JoinRequest) { j.URL = "https://10.0.0.2" },
		"another host than ip":   func(j *JoinRequest) { j.URL = "https://10.9.9.9:3355" },
		"a path":                 func(j *JoinRequest) { j.URL = "https://10.0.0.2:3355/elsewhere" },
		"no fingerprint":         func(j *JoinRequest) { j.Fingerprint = "" },
		"invalid host is a 400":  func(j *JoinRequest) { j.Host.CPUs = 0 },
	} {
		j := ok
		mutate(&j)
		if err := j.Validate(); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}
}
