// Package layout holds the test that keeps the repository's import rules true:
// the SDK imports nothing from the host, gateway, plugins or CLI; plugins import
// only the SDK; heavy client libraries stay out of the SDK and the host.
package layout
