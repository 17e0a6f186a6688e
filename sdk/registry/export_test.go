package registry

// ExpireNow runs one reaper pass at once, so TTL tests with a fake clock need not
// wait for the background ticker.
func ExpireNow(m *Memory) { m.expire() }
