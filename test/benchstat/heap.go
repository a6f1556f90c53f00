package benchstat

import (
	"runtime"
	"runtime/metrics"
)

// HeapBytes is the bytes of live heap objects after a garbage collection: the difference of two
// readings is what a structure built between them keeps.
func HeapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	runtime.GC()
	metrics.Read(s)
	return s[0].Value.Uint64()
}
