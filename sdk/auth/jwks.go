package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a fetched key set.
const maxJWKSBytes = 1 << 20

// jwks is a cached JSON Web Key Set: fetched at start, refreshed in the
// background, and refreshed at most once per MinRefreshInterval when a token
// names a kid the cache does not know.
type jwks struct {
	cfg    JWKSConfig
	client *http.Client
	logf   func(msg string, args ...any)

	mu   sync.RWMutex
	keys []*verificationKey

	fetchMu   sync.Mutex // one fetch at a time
	lastFetch time.Time  // guarded by fetchMu

	ctx    context.Context // ends at close: background fetches stop with it
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// newJWKS fetches the set once, failing when it cannot be used, and starts the
// background refresh; Close stops it.
func newJWKS(ctx context.Context, cfg JWKSConfig, client *http.Client, logf func(string, ...any)) (*jwks, error) {
	if cfg.URL == "" {
		return nil, errors.New("jwks: url is required")
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultJWKSTimeout
	}
	for _, a := range cfg.Algorithms {
		if !slices.Contains(allAlgorithms, a) {
			return nil, fmt.Errorf("jwks: algorithm %q is not supported (use one of %v)", a, allAlgorithms)
		}
	}
	j := &jwks{cfg: cfg, client: client, logf: logf, done: make(chan struct{})}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	j.fetchMu.Lock()
	err := j.fetch(ctx)
	j.fetchMu.Unlock()
	if err != nil {
		j.cancel()
		return nil, err
	}
	go j.run()
	return j, nil
}

// lookup returns the cached keys for kid (every key when kid is empty) that
// may verify alg.
func (j *jwks) lookup(kid, alg string) []*verificationKey {
	j.mu.RLock()
	defer j.mu.RUnlock()
	var out []*verificationKey
	for _, k := range j.keys {
		if (kid == "" || k.id == kid) && k.allows(alg) {
			out = append(out, k)
		}
	}
	return out
}

// known reports whether the cache has a key with this kid.
func (j *jwks) known(kid string) bool {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return slices.ContainsFunc(j.keys, func(k *verificationKey) bool { return k.id == kid })
}

// refreshFor fetches the set again for a token whose kid is unknown, unless a
// fetch happened within MinRefreshInterval. Callers arriving while a fetch runs
// wait for it instead of starting their own.
func (j *jwks) refreshFor(ctx context.Context, kid string) {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	if j.known(kid) || time.Since(j.lastFetch) < j.cfg.MinRefreshInterval {
		return
	}
	// The fetch outlives a caller who hangs up (it has its own timeout): one
	// that cancels must not use up the refresh everyone else is waiting for.
	if err := j.fetch(context.WithoutCancel(ctx)); err != nil {
		j.logf("jwks refresh failed; keeping the cached keys", "url", j.cfg.URL, "error", err.Error())
	}
}

// run refreshes the set every RefreshInterval until Close.
func (j *jwks) run() {
	defer close(j.done)
	t := time.NewTicker(j.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-j.ctx.Done():
			return
		case <-t.C:
		}
		j.fetchMu.Lock()
		err := j.fetch(j.ctx)
		j.fetchMu.Unlock()
		if err != nil && j.ctx.Err() == nil {
			j.logf("jwks refresh failed; keeping the cached keys", "url", j.cfg.URL, "error", err.Error())
		}
	}
}

// close stops the background refresh and waits for it; closing twice is fine.
func (j *jwks) close() {
	j.once.Do(j.cancel)
	<-j.done
}

// fetch downloads and installs the set; the caller holds fetchMu. On failure the
// cached keys stay.
func (j *jwks) fetch(ctx context.Context) error {
	j.lastFetch = time.Now()
	ctx, cancel := context.WithTimeout(ctx, j.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.cfg.URL, nil)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", j.cfg.URL, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks: fetching %s: %w", j.cfg.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks: %s answered %s", j.cfg.URL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("jwks: reading %s: %w", j.cfg.URL, err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("jwks: %s sent more than %d bytes", j.cfg.URL, maxJWKSBytes)
	}
	keys, err := j.parse(body)
	if err != nil {
		return fmt.Errorf("jwks: %s: %w", j.cfg.URL, err)
	}
	j.mu.Lock()
	j.keys = keys
	j.mu.Unlock()
	return nil
}

// parse reads a key set, skipping (and logging) keys that cannot verify
// signatures here: encryption keys, symmetric keys, unsupported types.
func (j *jwks) parse(body []byte) ([]*verificationKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	var out []*verificationKey
	for i, raw := range set.Keys {
		k, err := j.parseKey(raw)
		if err != nil {
			j.logf("jwks key skipped", "url", j.cfg.URL, "index", i, "reason", err.Error())
			continue
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no usable signature verification key among %d keys", len(set.Keys))
	}
	return out, nil
}

func (j *jwks) parseKey(raw json.RawMessage) (*verificationKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, fmt.Errorf("kid %q is for %q, not signatures", jwk.KeyID, jwk.Use)
	}
	pub := jwk.Public()
	if !pub.Valid() {
		return nil, fmt.Errorf("kid %q: symmetric or invalid keys are not accepted from a key set", jwk.KeyID)
	}
	possible, err := algorithmsFor(pub.Key)
	if err != nil {
		return nil, fmt.Errorf("kid %q: %w", jwk.KeyID, err)
	}
	algs := possible
	if len(j.cfg.Algorithms) > 0 {
		algs = intersect(algs, j.cfg.Algorithms)
	}
	if jwk.Algorithm != "" {
		algs = intersect(algs, []string{jwk.Algorithm})
	}
	if len(algs) == 0 {
		return nil, fmt.Errorf("kid %q (alg %q) allows no accepted algorithm", jwk.KeyID, jwk.Algorithm)
	}
	return &verificationKey{id: jwk.KeyID, algs: algs, key: pub.Key}, nil
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
