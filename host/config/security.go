package config

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/auth/tlsconfig"
)

// The schemas of the security block and what nests in it.
var (
	securitySchema = bodySchema{attrs: []string{"realm"}, blocks: []blockSpec{{typ: "jwt"}, {typ: "internal"}, {typ: "tls"}, {typ: "rbac"}}}
	jwtSchema      = bodySchema{
		attrs:  []string{"issuer", "audience", "leeway", "roles_claim", "scopes_claim"},
		blocks: []blockSpec{{typ: "key"}, {typ: "jwks"}},
	}
	keySchema      = bodySchema{attrs: append([]string{"id", "algorithms"}, keySources...)}
	jwksSchema     = bodySchema{attrs: []string{"url", "refresh_interval", "min_refresh_interval", "timeout", "algorithms"}}
	internalSchema = bodySchema{attrs: []string{"issuer", "ttl", "leeway"}, blocks: []blockSpec{{typ: "key"}, {typ: "signing"}}}
	signingSchema  = bodySchema{attrs: append([]string{"id", "algorithm"}, keySources...)}
	tlsSchema      = bodySchema{attrs: []string{"cert_file", "key_file", "ca_file", "client_ca_file", "require_client_cert", "server_name", "poll_interval"}}
	rbacSchema     = bodySchema{attrs: []string{"roles", "bindings"}, blocks: []blockSpec{{typ: "guard", label: "endpoint"}}}
	guardSchema    = bodySchema{attrs: []string{"match", "roles", "permissions", "public"}}
)

// keySources are the attributes a key block takes its material from, one of them.
var keySources = []string{"secret", "secret_file", "pem", "file"}

// jwtAlgorithms are the algorithms a key may be limited to.
var jwtAlgorithms = auth.Algorithms()

// Security is the `security {...}` block decoded onto auth.Config: bearer
// tokens (jwt), internal tokens between services (internal), mutual TLS on the
// http transport (tls) and role-based guards (rbac). Relative file paths are
// resolved against the config file's directory. Parse checks the block's
// shape; Check loads the files it names.
type Security struct {
	auth.Config
	// Range is the block header.
	Range hcl.Range `json:"-"`
	// JWKSRange is the jwks block, or Range when there is none: where a JWKS
	// that cannot be fetched at start-up is reported.
	JWKSRange hcl.Range `json:"-"`
	// TLSRange is the tls block, or Range when there is none.
	TLSRange hcl.Range `json:"-"`

	// material maps each key Check loads to the attribute naming it.
	jwtKeys, internalKeys []hcl.Range
	signing               hcl.Range
	tlsFiles              map[string]hcl.Range // TLS file setting → its value
}

// decodeSecurity decodes the security block; nil when there is none.
func (d *decoder) decodeSecurity(b *hclsyntax.Block, tr Transport) *Security {
	if b == nil {
		return nil
	}
	attrs, blocks := d.content(b.Body, securitySchema)
	s := &Security{Range: b.DefRange(), JWKSRange: b.DefRange(), TLSRange: b.DefRange()}
	if a := attrs["realm"]; a != nil {
		s.Realm, _ = d.str(a)
	}
	all := byType(blocks)
	if jb := d.single(all["jwt"]); jb != nil {
		s.JWT = d.decodeJWT(jb, s)
	}
	if ib := d.single(all["internal"]); ib != nil {
		s.Internal = d.decodeInternal(ib, s)
	}
	if tb := d.single(all["tls"]); tb != nil {
		s.TLSRange = tb.DefRange()
		s.TLS = d.decodeTLS(tb, s)
		if tr.Plugin != "" || tr.Name != builtinTransports[0] {
			d.errorf(tb.TypeRange, "TLS needs the built-in http transport",
				"security.tls configures the built-in http transport, but the transport is %q; expected transport \"http\", or TLS set in the config block of plugin %q",
				tr.Name, kindTransport+"-"+tr.Name)
		}
	}
	if rb := d.single(all["rbac"]); rb != nil {
		s.RBAC = d.decodeRBAC(rb)
	}
	return s
}

func (d *decoder) decodeJWT(b *hclsyntax.Block, s *Security) *auth.JWTConfig {
	attrs, blocks := d.content(b.Body, jwtSchema)
	j := &auth.JWTConfig{}
	if a := attrs["issuer"]; a != nil {
		j.Issuer, _ = d.str(a)
	}
	if a := attrs["audience"]; a != nil {
		j.Audience, _ = d.stringList(a)
	}
	if a := attrs["leeway"]; a != nil {
		j.Leeway, _ = d.duration(a, true)
	}
	if a := attrs["roles_claim"]; a != nil {
		j.RolesClaim, _ = d.claimPath(a)
	}
	if a := attrs["scopes_claim"]; a != nil {
		j.ScopesClaim, _ = d.claimPath(a)
	}
	all := byType(blocks)
	for _, kb := range all["key"] {
		k, rng := d.decodeKey(kb)
		j.Keys = append(j.Keys, k)
		s.jwtKeys = append(s.jwtKeys, rng)
	}
	if jb := d.single(all["jwks"]); jb != nil {
		s.JWKSRange = jb.DefRange()
		j.JWKS = d.decodeJWKS(jb)
	}
	if len(all["key"]) == 0 && len(all["jwks"]) == 0 {
		d.errorf(b.DefRange(), "No keys for jwt", `expected a key { file = "jwt.pub" } block, a jwks { url = "https://..." } block, or both`)
	}
	return j
}

// claimPath decodes a dotted claim path such as "realm_access.roles".
func (d *decoder) claimPath(a *hclsyntax.Attribute) (string, bool) {
	v, ok := d.str(a)
	if !ok {
		return "", false
	}
	if v == "" || slices.Contains(strings.Split(v, "."), "") {
		d.errorf(a.Expr.Range(), invalid(a), `expected a claim name or dotted path such as "roles" or "realm_access.roles", got %q`, v)
		return "", false
	}
	return v, true
}

// decodeKey decodes a verification key block, returning where its material is
// named for Check.
func (d *decoder) decodeKey(b *hclsyntax.Block) (auth.KeyConfig, hcl.Range) {
	attrs, _ := d.content(b.Body, keySchema)
	var k auth.KeyConfig
	if a := attrs["id"]; a != nil {
		k.ID, _ = d.str(a)
	}
	if a := attrs["algorithms"]; a != nil {
		k.Algorithms, _ = d.algorithms(a)
	}
	rng := d.keySource(b, attrs, &k.Secret, &k.SecretFile, &k.PEM, &k.File)
	return k, rng
}

// keySource decodes the one attribute of secret, secret_file, pem and file a
// key block must have, and returns its range (the block's when it has none).
func (d *decoder) keySource(b *hclsyntax.Block, attrs map[string]*hclsyntax.Attribute, secret, secretFile, pemText, file *string) hcl.Range {
	var set []*hclsyntax.Attribute
	for _, name := range keySources {
		if a := attrs[name]; a != nil {
			set = append(set, a)
		}
	}
	switch {
	case len(set) == 0:
		d.errorf(b.DefRange(), fmt.Sprintf("Missing key material in %s block", b.Type),
			`expected one of: secret = env("SECRET"), secret_file = "secret.key", pem = <<EOT ... EOT, file = "key.pem"`)
		return b.DefRange()
	case len(set) > 1:
		slices.SortFunc(set, func(x, y *hclsyntax.Attribute) int { return x.SrcRange.Start.Byte - y.SrcRange.Start.Byte })
		d.errorf(set[1].NameRange, fmt.Sprintf("Conflicting %q and %q", set[0].Name, set[1].Name),
			"a %s block takes its key from exactly one of: %s", b.Type, quoteList(keySources))
	}
	a := set[0]
	v, ok := d.str(a)
	if !ok {
		return a.Expr.Range()
	}
	switch a.Name {
	case "secret":
		if len(v) < auth.MinSecretBytes {
			d.errorf(a.Expr.Range(), invalid(a), "expected an HMAC secret of at least %d bytes, got %d", auth.MinSecretBytes, len(v))
		}
		*secret = v
	case "pem":
		if !strings.Contains(v, "-----BEGIN ") {
			d.errorf(a.Expr.Range(), invalid(a), `expected PEM text starting "-----BEGIN ...", such as a heredoc <<EOT ... EOT`)
		}
		*pemText = v
	case "secret_file":
		*secretFile, _ = d.path(a, v)
	case "file":
		*file, _ = d.path(a, v)
	}
	return a.Expr.Range()
}

// path resolves a file path against the config file's directory.
func (d *decoder) path(a *hclsyntax.Attribute, v string) (string, bool) {
	if strings.TrimSpace(v) == "" {
		d.errorf(a.Expr.Range(), invalid(a), "expected a file path, got an empty string")
		return "", false
	}
	if filepath.IsAbs(v) {
		return v, true
	}
	return filepath.Join(filepath.Dir(d.file), v), true
}

// pathAttr decodes a file path attribute.
func (d *decoder) pathAttr(a *hclsyntax.Attribute) (string, bool) {
	v, ok := d.str(a)
	if !ok {
		return "", false
	}
	return d.path(a, v)
}

// algorithms decodes a list of JWT algorithm names.
func (d *decoder) algorithms(a *hclsyntax.Attribute) ([]string, bool) {
	list, ok := d.stringList(a)
	if !ok {
		return nil, false
	}
	for _, alg := range list {
		if !slices.Contains(jwtAlgorithms, alg) {
			extra := ""
			if strings.EqualFold(alg, "none") {
				extra = ` ("none" is never accepted)`
			}
			d.errorf(a.Expr.Range(), fmt.Sprintf("Unknown algorithm %q", alg), "expected algorithms from: %s%s", quoteList(jwtAlgorithms), extra)
			return nil, false
		}
	}
	return list, true
}

func (d *decoder) decodeJWKS(b *hclsyntax.Block) *auth.JWKSConfig {
	attrs, _ := d.content(b.Body, jwksSchema)
	j := &auth.JWKSConfig{}
	if a := attrs["url"]; a != nil {
		if v, ok := d.str(a); ok {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				d.errorf(a.Expr.Range(), invalid(a), `expected an http or https URL such as "https://login.example.com/certs", got %q`, v)
			} else {
				j.URL = v
			}
		}
	} else {
		d.errorf(b.DefRange(), "Missing url for jwks", `expected url = "https://login.example.com/certs" in the block`)
	}
	if a := attrs["refresh_interval"]; a != nil {
		j.RefreshInterval, _ = d.duration(a, false)
	}
	if a := attrs["min_refresh_interval"]; a != nil {
		j.MinRefreshInterval, _ = d.duration(a, false)
	}
	if a := attrs["timeout"]; a != nil {
		j.Timeout, _ = d.duration(a, false)
	}
	if a := attrs["algorithms"]; a != nil {
		j.Algorithms, _ = d.algorithms(a)
	}
	return j
}

func (d *decoder) decodeInternal(b *hclsyntax.Block, s *Security) *auth.InternalConfig {
	attrs, blocks := d.content(b.Body, internalSchema)
	in := &auth.InternalConfig{}
	if a := attrs["issuer"]; a != nil {
		in.Issuer, _ = d.str(a)
	}
	if a := attrs["ttl"]; a != nil {
		in.TTL, _ = d.duration(a, false)
	}
	if a := attrs["leeway"]; a != nil {
		in.Leeway, _ = d.duration(a, true)
	}
	all := byType(blocks)
	for _, kb := range all["key"] {
		k, rng := d.decodeKey(kb)
		in.Keys = append(in.Keys, k)
		s.internalKeys = append(s.internalKeys, rng)
	}
	if sb := d.single(all["signing"]); sb != nil {
		attrs, _ := d.content(sb.Body, signingSchema)
		sc := &auth.SigningKeyConfig{}
		if a := attrs["id"]; a != nil {
			sc.ID, _ = d.str(a)
		}
		if a := attrs["algorithm"]; a != nil {
			if v, ok := d.str(a); ok {
				if slices.Contains(jwtAlgorithms, v) {
					sc.Algorithm = v
				} else {
					d.errorf(a.Expr.Range(), fmt.Sprintf("Unknown algorithm %q", v), "expected one of: %s", quoteList(jwtAlgorithms))
				}
			}
		}
		s.signing = d.keySource(sb, attrs, &sc.Secret, &sc.SecretFile, &sc.PEM, &sc.File)
		in.Signing = sc
	}
	if len(all["key"]) == 0 && len(all["signing"]) == 0 {
		d.errorf(b.DefRange(), "No keys for internal tokens",
			"expected key { ... } blocks to accept internal tokens, a signing { ... } block to mint them, or both")
	}
	return in
}

func (d *decoder) decodeTLS(b *hclsyntax.Block, s *Security) *tlsconfig.Files {
	f, files := d.decodeTLSFiles(b, "every service serves TLS with this certificate")
	s.tlsFiles = files
	if f.ClientCAFile != "" && f.CAFile == "" {
		d.warnf(files["client_ca_file"], "client_ca_file without ca_file",
			"client_ca_file only admits callers: the services' calls to each other verify server certificates against the system's trusted roots, so certificates from your own CA are refused; expected ca_file = \"ca.crt\" naming the CA that issued the services' certificates")
	}
	return f
}

// decodeTLSFiles decodes a tls block; why says what the certificate is for,
// in the message when it is missing. files maps each file attribute set to its
// value, for errors found when the files are loaded.
func (d *decoder) decodeTLSFiles(b *hclsyntax.Block, why string) (f *tlsconfig.Files, files map[string]hcl.Range) {
	attrs, _ := d.content(b.Body, tlsSchema)
	f = &tlsconfig.Files{}
	files = map[string]hcl.Range{}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"cert_file", &f.CertFile}, {"key_file", &f.KeyFile}, {"ca_file", &f.CAFile}, {"client_ca_file", &f.ClientCAFile}} {
		a := attrs[p.name]
		if a == nil {
			if p.name == "cert_file" || p.name == "key_file" {
				d.errorf(b.DefRange(), fmt.Sprintf("Missing %s for tls", p.name),
					"%s; expected cert_file and key_file, such as cert_file = \"tls.crt\" and key_file = \"tls.key\"", why)
			}
			continue
		}
		if v, ok := d.pathAttr(a); ok {
			*p.dst = v
			files[p.name] = a.Expr.Range()
		}
	}
	if a := attrs["require_client_cert"]; a != nil {
		f.RequireClientCert, _ = d.boolean(a)
		if f.RequireClientCert && attrs["ca_file"] == nil && attrs["client_ca_file"] == nil {
			d.errorf(a.Expr.Range(), `Missing client_ca_file for "require_client_cert"`,
				"client certificates are checked against the CAs in client_ca_file, else in ca_file; expected client_ca_file = \"clients-ca.crt\" in the block")
		}
	}
	if a := attrs["server_name"]; a != nil {
		f.ServerName, _ = d.str(a)
	}
	if a := attrs["poll_interval"]; a != nil {
		f.PollInterval, _ = d.duration(a, false)
	}
	return f, files
}

func (d *decoder) decodeRBAC(b *hclsyntax.Block) auth.RBACConfig {
	attrs, blocks := d.content(b.Body, rbacSchema)
	var r auth.RBACConfig
	if a := attrs["roles"]; a != nil {
		if m, ok := d.listMap(a, "roles to permissions, such as { reader = [\"orders:read\"] }"); ok {
			r.Roles = m
			for _, role := range sortedKeys(m) {
				for _, p := range m[role] {
					if _, err := auth.ParsePermission(p); err != nil {
						d.errorf(a.Expr.Range(), fmt.Sprintf("Invalid permission for role %q", role),
							`%v; expected "resource:action", "resource:action:scope" (any part may be "*") or "*"`, trimAuth(err))
					}
				}
			}
		}
	}
	if a := attrs["bindings"]; a != nil {
		r.Bindings, _ = d.listMap(a, "subjects to roles, such as { \"spiffe://prod/billing\" = [\"reader\"] }")
	}
	for _, gb := range byType(blocks)["guard"] {
		r.Guards = append(r.Guards, d.decodeGuard(gb))
	}
	return r
}

func (d *decoder) decodeGuard(b *hclsyntax.Block) auth.GuardConfig {
	attrs, _ := d.content(b.Body, guardSchema)
	g := auth.GuardConfig{Endpoint: label(b)}
	if !auth.ValidGuardEndpoint(g.Endpoint) {
		d.errorf(b.LabelRanges[0], fmt.Sprintf("Invalid guard endpoint %q", g.Endpoint), `expected "Handler.Method", "Handler.*" or "*"`)
	}
	if a := attrs["match"]; a != nil {
		if v, ok := d.str(a); ok {
			if v == "any" || v == "all" {
				g.Match = v
			} else {
				d.errorf(a.Expr.Range(), invalid(a), `expected "any" or "all", got %q`, v)
			}
		}
	}
	if a := attrs["roles"]; a != nil {
		g.Roles, _ = d.stringList(a)
	}
	if a := attrs["permissions"]; a != nil {
		g.Permissions, _ = d.stringList(a)
		for _, p := range g.Permissions {
			if _, err := auth.ParsePermission(p); err != nil {
				d.errorf(a.Expr.Range(), invalid(a), `%v; expected "resource:action", "resource:action:scope" (any part may be "*") or "*"`, trimAuth(err))
			}
		}
	}
	if a := attrs["public"]; a != nil {
		g.Public, _ = d.boolean(a)
		if g.Public && (len(g.Roles) > 0 || len(g.Permissions) > 0) {
			d.errorf(a.Expr.Range(), "Public guard with requirements",
				"a public guard admits anonymous callers, so it cannot also require roles or permissions; expected public = true alone, or roles/permissions without it")
		}
	}
	return g
}

// listMap decodes a map of string lists.
func (d *decoder) listMap(a *hclsyntax.Attribute, expected string) (map[string][]string, bool) {
	v, ok := d.value(a, cty.Map(cty.List(cty.String)), invalid(a), "a map of "+expected)
	if !ok {
		return nil, false
	}
	out := map[string][]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, list := it.Element()
		if list.IsNull() {
			d.errorf(a.Expr.Range(), invalid(a), "expected a list for %q, got null", k.AsString())
			return nil, false
		}
		items := []string{}
		for li := list.ElementIterator(); li.Next(); {
			_, e := li.Element()
			if e.IsNull() {
				d.errorf(a.Expr.Range(), invalid(a), "expected strings in the list for %q, got null", k.AsString())
				return nil, false
			}
			items = append(items, e.AsString())
		}
		out[k.AsString()] = items
	}
	return out, true
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// trimAuth drops the package prefix of an sdk/auth error for a diagnostic.
func trimAuth(err error) string { return strings.TrimPrefix(err.Error(), "auth: ") }

// Check loads every key, certificate and CA file the block names, as start-up
// does, and reports each one that cannot be read or used at the attribute
// naming it, all at once in an *Error. It makes no network calls: a JWKS is
// fetched when the host starts.
func (s *Security) Check() error {
	if s == nil {
		return nil
	}
	var diags hcl.Diagnostics
	add := func(rng hcl.Range, summary string, err error, expected string) {
		detail := trimAuth(err)
		for _, p := range []string{"jwt: ", "internal: "} {
			detail = strings.TrimPrefix(detail, p)
		}
		if !strings.Contains(detail, "expected") {
			detail += "; expected " + expected
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Subject: rng.Ptr(), Detail: detail})
	}
	checkKeys := func(keys []auth.KeyConfig, ranges []hcl.Range, what string) {
		for i, k := range keys {
			v, err := auth.NewVerifier(context.Background(), auth.JWTConfig{Keys: []auth.KeyConfig{k}})
			if err != nil {
				add(ranges[i], "Unusable "+what+" key", err, "an HMAC secret of at least 32 bytes, or a PEM public key or certificate")
				continue
			}
			v.Close()
		}
	}
	if s.JWT != nil {
		checkKeys(s.JWT.Keys, s.jwtKeys, "jwt")
	}
	if in := s.Internal; in != nil {
		checkKeys(in.Keys, s.internalKeys, "internal")
		if in.Signing != nil {
			if _, err := auth.NewSigner(auth.InternalConfig{Signing: in.Signing}); err != nil {
				add(s.signing, "Unusable signing key", err, "an HMAC secret of at least 32 bytes, or a PEM private key (RSA, ECDSA or Ed25519)")
			}
		}
	}
	if s.TLS != nil {
		if d := checkTLS(*s.TLS, s.tlsFiles, s.TLSRange); d != nil {
			diags = append(diags, d)
		}
	}
	if len(diags) == 0 {
		return nil
	}
	return newError(diags)
}

// checkTLS loads files as start-up does; a problem comes back at the attribute
// that names the file at fault (named maps settings to them), else at block.
func checkTLS(files tlsconfig.Files, named map[string]hcl.Range, block hcl.Range) *hcl.Diagnostic {
	r, err := tlsconfig.New(files)
	if err == nil {
		r.Close()
		return nil
	}
	rng := block
	var fe *tlsconfig.FileError
	if errors.As(err, &fe) {
		if at, ok := named[fe.Setting]; ok {
			rng = at
		}
	}
	detail := trimAuth(err)
	if !strings.Contains(detail, "expected") {
		detail += "; expected a PEM certificate chain with its matching private key, and a PEM CA bundle"
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unusable TLS files", Subject: rng.Ptr(), Detail: detail}
}
