package broker

// fifo is a growable ring of envelopes, held by value so queueing allocates only
// when the ring grows; its owner bounds it and guards it with a lock.
type fifo struct {
	buf  []envelope
	head int
	n    int
}

// len is the number of queued envelopes.
func (q *fifo) len() int { return q.n }

// push appends e, doubling the ring when it is full.
func (q *fifo) push(e envelope) {
	if q.n == len(q.buf) {
		grown := make([]envelope, max(2*len(q.buf), 8))
		for i := 0; i < q.n; i++ {
			grown[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = e
	q.n++
}

// pop removes and returns the oldest envelope.
func (q *fifo) pop() (envelope, bool) {
	if q.n == 0 {
		return envelope{}, false
	}
	e := q.buf[q.head]
	q.buf[q.head] = envelope{} // let the payload be collected
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return e, true
}

// drain appends every queued envelope to dst, oldest first, and empties the ring.
func (q *fifo) drain(dst []envelope) []envelope {
	for {
		e, ok := q.pop()
		if !ok {
			return dst
		}
		dst = append(dst, e)
	}
}
