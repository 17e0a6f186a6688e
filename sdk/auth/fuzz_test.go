package auth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/microhost/micro/sdk/auth"
)

// FuzzVerify feeds arbitrary tokens to a verifier holding every key type: it
// must never panic, and must never accept a token it did not see signed.
func FuzzVerify(f *testing.F) {
	k := testKeys()
	signed := []string{
		mint(f, "ES256", k.ec256, "ec-256", claims("alice")),
		mint(f, "HS256", []byte(testSecret), "hs-1", claims("alice")),
		mint(f, "EdDSA", k.ed, "ed-1", claims("alice")),
	}
	good := signed[0]
	for _, seed := range []string{
		signed[0], signed[1], signed[2],
		"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJIUzI1NiIsImtpZCI6WzFdfQ.e30.sig",
		strings.Replace(good, ".", "..", 1),
		good[:len(good)/2],
	} {
		f.Add(seed)
	}
	v, err := auth.NewVerifier(context.Background(), *jwtConfig(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { v.Close() })
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(context.Background(), token)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		// The signature covers header and payload as sent: an accepted token
		// must carry those of a token signed above.
		if !slices.ContainsFunc(signed, func(s string) bool { return signingInput(s) == signingInput(token) }) {
			t.Fatalf("accepted a token that was never signed: %q", token)
		}
		if p.Subject == "" || p.Source != auth.SourceJWT {
			t.Fatalf("accepted token gave principal %+v", p)
		}
	})
}

// signingInput is the header.payload part of a compact token.
func signingInput(tok string) string {
	if i := strings.LastIndexByte(tok, '.'); i >= 0 {
		return tok[:i]
	}
	return tok
}
