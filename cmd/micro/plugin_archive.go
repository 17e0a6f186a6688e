package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Limits on what an archive install downloads and unpacks.
const (
	maxSumsBytes    = 1 << 20 // SHA256SUMS
	maxArchiveBytes = 1 << 30 // the archive
	maxBinaryBytes  = 1 << 30 // the plugin binary inside it
)

// httpClient fetches archives and their SHA256SUMS.
var httpClient = &http.Client{Timeout: 10 * time.Minute}

// fetchArchive downloads an archive, checks it against the SHA256SUMS beside
// it, and unpacks its one plugin binary into tmp. Messages and the source to
// record show the URL without its user name, password and query string.
func (a *app) fetchArchive(ctx context.Context, rawURL, tmp string) (*fetched, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// The error quotes the URL, credentials and all: show only why.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, usageErrorf("plugin install: %s is not a valid URL: %v", shownURL(rawURL), err)
	}
	shown := publicURL(u)
	name := path.Base(u.Path)
	format := archiveFormat(name)
	if format == "" {
		return nil, usageErrorf("plugin install: %s does not end in .tar.gz, .tgz or .zip; give the URL of a plugin archive", shown)
	}
	sumsURL := *u
	sumsURL.Path = path.Join(path.Dir(u.Path), "SHA256SUMS")
	sumsURL.RawPath, sumsURL.RawQuery, sumsURL.Fragment = "", "", ""

	var sums bytes.Buffer
	if err := fetch(ctx, &sumsURL, maxSumsBytes, &sums); err != nil {
		hint := "check the URL and that the server is reachable"
		var se *statusError
		switch {
		case errors.As(err, &se) && se.code == http.StatusNotFound:
			hint = "the archive's directory must hold a SHA256SUMS file (`sha256sum *.tar.gz > SHA256SUMS`)"
		case errors.Is(err, errTooLarge):
			hint = "that is not a checksum list: check the URL"
		}
		return nil, fmt.Errorf("cannot install %s: fetching its checksums: %w; %s", shown, err, hint)
	}
	want, err := lookupSum(sums.Bytes(), name)
	if err != nil {
		return nil, fmt.Errorf("cannot install %s: %s %w", shown, publicURL(&sumsURL), err)
	}

	archive := filepath.Join(tmp, "archive")
	f, err := os.Create(archive)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	err = fetch(ctx, u, maxArchiveBytes, io.MultiWriter(f, h))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("cannot install %s: %w", shown, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return nil, fmt.Errorf("cannot install %s: checksum mismatch: %s says sha256 %s, the downloaded archive has %s; the archive or SHA256SUMS was changed or corrupted: do not use it, ask its publisher", shown, publicURL(&sumsURL), want, got)
	}

	bin, err := extractPlugin(archive, format, tmp)
	if err != nil {
		return nil, fmt.Errorf("cannot install %s: %w", shown, err)
	}
	id, _, _ := idFromBinaryName(bin)
	var unrecorded []string
	if u.User != nil {
		unrecorded = append(unrecorded, "user name and password")
	}
	if u.RawQuery != "" || u.ForceQuery {
		unrecorded = append(unrecorded, "query string")
	}
	return &fetched{bin: bin, source: shown, wantID: id, unrecorded: strings.Join(unrecorded, " and ")}, nil
}

// publicURL is u without what may be a secret: its user name and password,
// query string and fragment.
func publicURL(u *url.URL) string {
	v := *u
	v.User, v.RawQuery, v.ForceQuery, v.Fragment, v.RawFragment = nil, "", false, "", ""
	return v.String()
}

// shownURL is a URL to show in a message: publicURL, or only its scheme when
// it does not parse.
func shownURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return publicURL(u)
	}
	if scheme, _, ok := strings.Cut(raw, "://"); ok {
		return scheme + "://…"
	}
	return "the URL"
}

func archiveFormat(name string) string {
	switch {
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		return "tar.gz"
	case strings.HasSuffix(name, ".zip"):
		return "zip"
	}
	return ""
}

// fetch GETs u into w, refusing bodies larger than limit bytes. Its errors
// show URLs without credentials, a redirect's target included.
func fetch(ctx context.Context, u *url.URL, limit int64, w io.Writer) error {
	shown := publicURL(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return hideCredentials(err, shown)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return hideCredentials(err, shown)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusError{url: shown, code: resp.StatusCode, status: resp.Status}
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", shown, err)
	}
	if n > limit {
		return fmt.Errorf("GET %s: %w (over %d bytes)", shown, errTooLarge, limit)
	}
	return nil
}

// hideCredentials makes the URL a *url.Error quotes (the one asked for, or a
// redirect's target) its publicURL, or shown when it does not parse.
func hideCredentials(err error, shown string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			ue.URL = publicURL(u)
		} else {
			ue.URL = shown
		}
	}
	return err
}

// errTooLarge is a download over its limit.
var errTooLarge = errors.New("too large")

// statusError is an answer other than 200 OK.
type statusError struct {
	url    string
	code   int
	status string
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: %s", e.url, e.status) }

// lookupSum finds name's digest in a sha256sum-format file ("<hex>  <file>",
// or "<hex> *<file>" for binary mode). Its error completes "<SHA256SUMS URL> ...".
func lookupSum(sums []byte, name string) (string, error) {
	var found string
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, file, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		file = strings.TrimPrefix(strings.TrimLeft(file, " "), "*")
		file = strings.TrimPrefix(file, "./")
		if file != name {
			continue
		}
		sum = strings.ToLower(sum)
		if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
			return "", fmt.Errorf("has a malformed line for %s (%q): it is not in `sha256sum` format; ask the archive's publisher to fix it", name, line)
		}
		if found != "" && found != sum {
			return "", fmt.Errorf("lists %s twice with different checksums; do not use it, ask the archive's publisher", name)
		}
		found = sum
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("cannot be read: %w", err)
	}
	if found == "" {
		return "", fmt.Errorf("has no line for %s, so the archive cannot be verified; ask its publisher to add `sha256sum %s` to SHA256SUMS", name, name)
	}
	return found, nil
}

// extractPlugin writes the archive's one micro-<kind>-<name> binary into dir.
func extractPlugin(archive, format, dir string) (string, error) {
	var (
		names   []string // every file, for the error message
		matches []string
		out     string
	)
	take := func(name string, r io.Reader) error {
		base := path.Base(name)
		names = append(names, name)
		if _, _, ok := idFromBinaryName(base); !ok {
			return nil
		}
		matches = append(matches, name)
		if len(matches) > 1 {
			return nil
		}
		out = filepath.Join(dir, base)
		f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700)
		if err != nil {
			return err
		}
		n, err := io.Copy(f, io.LimitReader(r, maxBinaryBytes+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && n > maxBinaryBytes {
			err = fmt.Errorf("%s is larger than %d bytes", name, int64(maxBinaryBytes))
		}
		return err
	}
	var err error
	switch format {
	case "tar.gz":
		err = walkTarGz(archive, take)
	case "zip":
		err = walkZip(archive, take)
	}
	if err != nil {
		return "", fmt.Errorf("unpacking the %s archive: %w", format, err)
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("the archive holds no plugin binary named micro-<kind>-<name> (it has: %s); it must hold exactly one", listOrNone(names))
	case 1:
		return out, nil
	}
	return "", fmt.Errorf("the archive holds %d plugin binaries (%s); it must hold exactly one", len(matches), strings.Join(matches, ", "))
}

func walkTarGz(archive string, take func(string, io.Reader) error) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue // directories, links and devices are never the plugin
		}
		if err := take(hdr.Name, tr); err != nil {
			return err
		}
	}
}

func walkZip(archive string, take func(string, io.Reader) error) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		if !zf.Mode().IsRegular() {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return err
		}
		err = take(zf.Name, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no files"
	}
	const max = 10
	if len(names) > max {
		return strings.Join(names[:max], ", ") + fmt.Sprintf(" and %d more", len(names)-max)
	}
	return strings.Join(names, ", ")
}
