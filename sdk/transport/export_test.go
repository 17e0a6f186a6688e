package transport

// LivePools reports how many addresses t has a pool for, so that tests can see
// the health loop forget a pool while its connections are still open.
func LivePools(t *HTTP) int {
	n := 0
	t.pools.Range(func(_, v any) bool {
		if !v.(*httpConn).pool.isRetired() {
			n++
		}
		return true
	})
	return n
}
