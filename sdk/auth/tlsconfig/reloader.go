package tlsconfig

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader holds the current certificate and CA pool read from Files and
// watches the files, swapping in new contents when they change. Configurations
// from ServerConfig and ClientConfig always use the current contents. A change
// that cannot be loaded (a half-written pair, a bad PEM) is logged and the
// previous contents stay until the files are fixed.
type Reloader struct {
	files Files
	logf  func(msg string, args ...any)

	cur atomic.Pointer[material]

	mu     sync.Mutex // serialises loads
	stamps map[string]stamp

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// material is one loaded generation of the files.
type material struct {
	cert    *tls.Certificate // nil when no CertFile is configured
	pool    *x509.CertPool   // nil when no CAFile is configured
	clients *x509.CertPool   // client certificates' CAs: ClientCAFile's, else pool
	server  *tls.Config      // what a server handshake uses
}

// stamp identifies a version of a file by its content: modification times are
// too coarse to tell apart two writes in quick succession.
type stamp [sha256.Size]byte

// Option tunes a Reloader.
type Option func(*Reloader)

// Logger receives reload events and failures as a message and key/value pairs.
func Logger(f func(msg string, args ...any)) Option { return func(r *Reloader) { r.logf = f } }

// New loads files, failing when they cannot be read or do not match, and starts
// watching them; Close stops the watch.
func New(files Files, opts ...Option) (*Reloader, error) {
	if (files.CertFile == "") != (files.KeyFile == "") {
		return nil, errors.New("tls: set both cert_file and key_file, or neither")
	}
	if files.RequireClientCert && files.CAFile == "" && files.ClientCAFile == "" {
		return nil, errors.New("tls: require_client_cert needs client_ca_file (or ca_file): the CAs client certificates are checked against")
	}
	if files.PollInterval <= 0 {
		files.PollInterval = DefaultPollInterval
	}
	r := &Reloader{files: files, logf: func(string, ...any) {}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, opt := range opts {
		opt(r)
	}
	if _, err := r.Reload(); err != nil {
		return nil, err
	}
	go r.watch()
	return r, nil
}

// Close stops watching the files.
func (r *Reloader) Close() error {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	return nil
}

// Reload reads the files again if any changed since the last load and reports
// whether it swapped in new contents. On error the previous contents stay.
func (r *Reloader) Reload() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamps, err := r.stat()
	if err != nil {
		return false, err
	}
	if r.stamps != nil && sameStamps(r.stamps, stamps) {
		return false, nil
	}
	m, err := r.load()
	if err != nil {
		return false, err
	}
	r.cur.Store(m)
	r.stamps = stamps
	return true, nil
}

// watch polls the files until Close; they are small, so each poll reads them.
// A problem is logged once, not at every poll while it lasts.
func (r *Reloader) watch() {
	defer close(r.done)
	t := time.NewTicker(r.files.PollInterval)
	defer t.Stop()
	var reported string
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		changed, err := r.Reload()
		if err == nil {
			reported = ""
		}
		switch {
		case err != nil && err.Error() != reported:
			reported = err.Error()
			r.logf("tls files changed but cannot be loaded; keeping the previous ones", "error", reported)
		case changed:
			r.logf("tls files reloaded", "cert", r.files.CertFile, "ca", r.files.CAFile, "client_ca", r.files.ClientCAFile)
		}
	}
}

// namedFile is a configured file and the setting naming it.
type namedFile struct{ setting, path string }

func (r *Reloader) paths() []namedFile {
	var out []namedFile
	for _, f := range []namedFile{
		{"cert_file", r.files.CertFile}, {"key_file", r.files.KeyFile},
		{"ca_file", r.files.CAFile}, {"client_ca_file", r.files.ClientCAFile},
	} {
		if f.path != "" {
			out = append(out, f)
		}
	}
	return out
}

func (r *Reloader) stat() (map[string]stamp, error) {
	out := map[string]stamp{}
	for _, f := range r.paths() {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, &FileError{Setting: f.setting, Path: f.path, Err: err}
		}
		out[f.path] = sha256.Sum256(b)
	}
	return out, nil
}

func sameStamps(a, b map[string]stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// load reads every file into a new generation.
func (r *Reloader) load() (*material, error) {
	m := &material{}
	if r.files.CertFile != "" {
		cert, err := loadKeyPair(r.files.CertFile, r.files.KeyFile)
		if err != nil {
			return nil, err
		}
		m.cert = &cert
	}
	if r.files.CAFile != "" {
		pool, err := loadPool("ca_file", r.files.CAFile)
		if err != nil {
			return nil, err
		}
		m.pool = pool
	}
	m.clients = m.pool
	if r.files.ClientCAFile != "" {
		pool, err := loadPool("client_ca_file", r.files.ClientCAFile)
		if err != nil {
			return nil, err
		}
		m.clients = pool
	}
	if m.cert != nil {
		m.server = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{*m.cert},
			ClientCAs:    m.clients,
			ClientAuth:   r.clientAuth(),
			NextProtos:   []string{"h2", "http/1.1"},
		}
	}
	return m, nil
}

func (r *Reloader) clientAuth() tls.ClientAuthType {
	switch {
	case r.files.RequireClientCert:
		return tls.RequireAndVerifyClientCert
	case r.files.CAFile != "" || r.files.ClientCAFile != "":
		return tls.VerifyClientCertIfGiven
	}
	return tls.NoClientCert
}
