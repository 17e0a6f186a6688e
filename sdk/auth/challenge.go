package auth

import (
	"strings"
)

// challenge builds an RFC 6750 WWW-Authenticate value: a bare challenge when no
// credentials came, error="invalid_token" with a description when they were bad.
func challenge(realm, description string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="`)
	b.WriteString(quoteSafe(realm))
	b.WriteByte('"')
	if description != "" {
		b.WriteString(`, error="invalid_token", error_description="`)
		b.WriteString(quoteSafe(description))
		b.WriteByte('"')
	}
	return b.String()
}

// quoteSafe keeps only characters allowed inside the quoted strings of a
// challenge (printable ASCII without '"' and '\').
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}

// Challenge returns the WWW-Authenticate value to send with a 401: a bare
// Bearer challenge for missing credentials, or one with error="invalid_token"
// when err is a verification failure.
func Challenge(realm string, err error) string {
	if realm == "" {
		realm = DefaultRealm
	}
	if err == nil {
		return challenge(realm, "")
	}
	return challenge(realm, reason(err))
}

// reason is the short part of a verification error: what follows
// ErrInvalidToken, without the library's detail.
func reason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ErrInvalidToken.Error()+": "); i >= 0 {
		msg = msg[i+len(ErrInvalidToken.Error())+2:]
	}
	if i := strings.Index(msg, ": "); i > 0 {
		msg = msg[:i]
	}
	return msg
}
