package prereq

import (
	"fmt"
	"testing"
)

// Recorder is a testing.TB that records how a test ended instead of ending it, for tests of
// helpers that end tests (Missing, and the helpers built on it).
type Recorder struct {
	testing.TB
	DidFail, DidSkip bool
	Msg              string
}

// ended stops the code under test after Fatal or Skip, as the real ones do (runtime.Goexit).
type ended struct{}

func (r *Recorder) Helper() {}
func (r *Recorder) Fatalf(format string, args ...any) {
	r.DidFail, r.Msg = true, fmt.Sprintf(format, args...)
	panic(ended{})
}
func (r *Recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }
func (r *Recorder) Skipf(format string, args ...any) {
	r.DidSkip, r.Msg = true, fmt.Sprintf(format, args...)
	panic(ended{})
}
func (r *Recorder) Skip(args ...any) { r.Skipf("%s", fmt.Sprint(args...)) }

// Run calls fn with a Recorder and returns it once fn returned or ended it.
func Run(t testing.TB, fn func(tb testing.TB)) *Recorder {
	r := &Recorder{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(ended); !ok {
					panic(v)
				}
			}
		}()
		fn(r)
	}()
	return r
}
