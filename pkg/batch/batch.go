// Package batch gathers what is ready on a channel into one batch, so that
// a writer pays one round trip to the database for everything that queued
// while it was writing the last batch.
package batch

// Next waits for a value from in, then appends to buf[:0] what else is
// ready at once, up to max values, and returns the batch. It returns false
// once in is closed and drained; a batch cut short by the close comes
// back first, with true.
func Next[T any](in <-chan T, buf []T, max int) ([]T, bool) {
	first, ok := <-in
	if !ok {
		return buf[:0], false
	}
	buf = append(buf[:0], first)
	for len(buf) < max {
		select {
		case v, ok := <-in:
			if !ok {
				return buf, true
			}
			buf = append(buf, v)
		default:
			return buf, true
		}
	}
	return buf, true
}
