package plugin

import "time"

// workerIdle is how long a worker of a workerPool waits for its next task
// before it exits.
const workerIdle = 5 * time.Second

// workerPool runs each task of a data path connection (a call to make, a
// request to serve) on a goroutine of its own, but keeps the goroutines: one
// that finished waits a while for the next task. A busy connection then stops
// paying for a new goroutine and for growing its stack to the depth of the
// transport or handler code on every task. Workers exit when idle for
// workerIdle or when done closes.
type workerPool[T any] struct {
	run   func(T)
	tasks chan T // unbuffered: a send succeeds only into an idle worker
	done  <-chan struct{}
}

func newWorkerPool[T any](done <-chan struct{}, run func(T)) *workerPool[T] {
	return &workerPool[T]{run: run, tasks: make(chan T), done: done}
}

// submit runs task on an idle worker, or on a new one when none is idle.
func (p *workerPool[T]) submit(task T) {
	select {
	case p.tasks <- task:
	default:
		go p.work(task)
	}
}

// work runs task, then the tasks handed to it until it idles out.
func (p *workerPool[T]) work(task T) {
	var idle *time.Timer
	for {
		p.run(task)
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case task = <-p.tasks:
		case <-idle.C:
			return
		case <-p.done:
			idle.Stop()
			return
		}
	}
}
