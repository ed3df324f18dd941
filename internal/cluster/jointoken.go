package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// joinPrefix starts every join token; the number is the format's version.
const joinPrefix = "tbjoin1."

// ErrBadJoinToken: a join token that does not decode.
var ErrBadJoinToken = api.Categorized(api.ErrBadRequest, "bad join token")

// JoinToken is what `testbedos-server join-token` prints: everything a
// client needs to join, in one string.
type JoinToken struct {
	MainURL      string `json:"main_url"`
	ClusterToken string `json:"cluster_token"`
	Fingerprint  string `json:"fingerprint"`
}

// String is "tbjoin1." and the base64url of the JSON.
func (j JoinToken) String() string {
	data, _ := json.Marshal(j)
	return joinPrefix + base64.RawURLEncoding.EncodeToString(data)
}

// ParseJoinToken decodes and checks a join token.
func ParseJoinToken(s string) (JoinToken, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), joinPrefix)
	if !ok {
		return JoinToken{}, fmt.Errorf("%w: it does not start with %q; copy the whole output of `testbedos-server join-token` on the main", ErrBadJoinToken, joinPrefix)
	}
	data, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return JoinToken{}, fmt.Errorf("%w: %v", ErrBadJoinToken, err)
	}
	var j JoinToken
	if err := json.Unmarshal(data, &j); err != nil {
		return JoinToken{}, fmt.Errorf("%w: %v", ErrBadJoinToken, err)
	}
	if !strings.HasPrefix(j.MainURL, "https://") || j.ClusterToken == "" {
		return JoinToken{}, fmt.Errorf("%w: it lacks an https main URL or the cluster token", ErrBadJoinToken)
	}
	if j.Fingerprint, err = tlsid.ParseFingerprint(j.Fingerprint); err != nil {
		return JoinToken{}, fmt.Errorf("%w: %w", ErrBadJoinToken, err)
	}
	return j, nil
}
