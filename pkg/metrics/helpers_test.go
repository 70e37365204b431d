package metrics

import "testing"

// expect returns a check that the sample of name with the labels has the
// value want.
func expect(t *testing.T, m *Metrics) func(name string, want float64, labels ...string) {
	return func(name string, want float64, labels ...string) {
		t.Helper()
		if got := value(t, m, name, labels...); got != want {
			t.Fatalf("%s%v = %g, want %g", name, labels, got, want)
		}
	}
}

// value returns the value of the sample of counter or gauge name with the
// labels (name, value, …); it fails the test when there is none.
func value(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			ok := true
			for i := 0; i < len(labels); i += 2 {
				found := false
				for _, l := range s.GetLabel() {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				ok = ok && found
			}
			if !ok {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.GetCounter().GetValue()
			case s.Gauge != nil:
				return s.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("%s%v not found", name, labels)
	return 0
}
