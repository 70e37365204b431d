package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// envBenchBig opts in to the 100k-room / 1M-member load benchmark, whose
// fill alone takes tens of seconds.
const envBenchBig = "IMCD_BENCH_BIG"

// BenchmarkApply measures one command's commit, as the daemon does it for
// every #join and #exit: one change set, one transaction, sequentially.
// It reports the latency percentiles.
func BenchmarkApply(b *testing.B) {
	for _, engine := range allEngines {
		b.Run(engine, func(b *testing.B) {
			needEngine(b, engine)
			db := openTest(b, engine)
			ctx := context.Background()
			room := benchRoom(b, db)
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := db.Apply(ctx, []imc.Change{joinOrLeave(room, i)}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkApplyParallel is many shards committing at once, each in a room
// of its own.
func BenchmarkApplyParallel(b *testing.B) {
	for _, engine := range allEngines {
		b.Run(engine, func(b *testing.B) {
			needEngine(b, engine)
			db := openTest(b, engine)
			ctx := context.Background()
			var shard int64
			var mu = make(chan struct{}, 1)
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mu <- struct{}{}
				shard++
				room := imc.URI{User: "bench" + strconv.FormatInt(shard, 10), Host: "example.com"}
				<-mu
				if err := db.Apply(ctx, []imc.Change{createRoom(room, 0)}); err != nil {
					b.Error(err)
					return
				}
				for i := 0; pb.Next(); i++ {
					if err := db.Apply(ctx, []imc.Change{joinOrLeave(room, i)}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// benchRoom creates the room of an Apply benchmark, with its owner.
func benchRoom(b *testing.B, db *testDB) imc.URI {
	room := imc.URI{User: "bench", Host: "example.com"}
	db.apply(b, createRoom(room, 0), addMember(room, imc.URI{User: "owner", Host: "example.com"}, imc.MemberOwner))
	return room
}

// joinOrLeave is change i of an Apply benchmark's steady churn in room:
// user i/2 joins, then leaves.
func joinOrLeave(room imc.URI, i int) imc.Change {
	u := imc.URI{User: "u" + strconv.Itoa(i/2), Host: "example.com"}
	if i%2 == 1 {
		return removeMember(room, u)
	}
	return addMember(room, u, 0)
}

// loadSizes are the room counts of the load benchmarks (ten members a
// room): 1,000, and with IMCD_BENCH_BIG=1 also 100,000.
func loadSizes() []int {
	if os.Getenv(envBenchBig) == "1" {
		return []int{1000, 100000}
	}
	return []int{1000}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkLoad measures Load: 1,000 rooms / 10,000 members by default, and
// with IMCD_BENCH_BIG=1 also 100,000 rooms / 1,000,000 members. It reports
// the heap the loaded rooms hold and the RSS the load needs at its peak.
func BenchmarkLoad(b *testing.B) {
	for _, rooms := range loadSizes() {
		for _, engine := range allEngines {
			name := fmt.Sprintf("%s/rooms=%d/members=%d", engine, rooms, rooms*10)
			// Filled once, on the first call, and kept for the parent's
			// lifetime: the framework calls the sub-benchmark several times
			// with growing b.N, and -bench may leave it out altogether.
			var once sync.Once
			var db *testDB
			parent := b
			b.Run(name, func(b *testing.B) {
				needEngine(b, engine)
				once.Do(func() {
					cfg := testConfig(parent, engine)
					cfg.CreateTables = true
					store, err := Open(context.Background(), cfg)
					if err != nil {
						return
					}
					parent.Cleanup(func() { store.Close() })
					db = &testDB{DB: store, cfg: cfg}
					start := time.Now()
					if err := fillRooms(db, rooms, 10); err != nil {
						db = nil
						b.Error(err)
						return
					}
					b.Logf("%s: filled %d rooms, %d members in %v", engine, rooms, rooms*10, time.Since(start).Round(time.Millisecond))
					// One untimed load first: right after a bulk fill the
					// server is still flushing it, which a daemon's start
					// does not meet.
					start = time.Now()
					if _, err := db.Load(context.Background()); err != nil {
						b.Error(err)
					}
					b.Logf("%s: first load after the fill took %v", engine, time.Since(start).Round(time.Millisecond))
				})
				if db == nil {
					b.Fatal("no filled tables")
				}
				b.ResetTimer()
				benchLoad(b, db, rooms)
			})
		}
	}
}

func benchLoad(b *testing.B, db *testDB, rooms int) {
	for i := 0; i < b.N; i++ {
		measure := i == 0
		var heap0, rss0 uint64
		if measure {
			b.StopTimer()
			runtime.GC()
			debug.FreeOSMemory()
			heap0, rss0 = heapInUse(), procStatus("VmRSS")
			resetPeakRSS()
			b.StartTimer()
		}
		loaded, err := db.Load(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if measure {
			b.StopTimer()
			peak := procStatus("VmHWM")
			runtime.GC()
			heap := heapInUse()
			n := 0
			for _, r := range loaded {
				n += len(r.Members())
			}
			if len(loaded) != rooms || n != rooms*10 {
				b.Fatalf("loaded %d rooms, %d members", len(loaded), n)
			}
			runtime.KeepAlive(loaded)
			// heap-MB: what the loaded rooms keep; load-rss-MB: what the
			// load added to the process's RSS at its peak; peak-rss-MB: the
			// whole test process at that peak.
			b.ReportMetric(float64(heap-heap0)/1e6, "heap-MB")
			b.ReportMetric((float64(peak)-float64(rss0))/1e6, "load-rss-MB")
			b.ReportMetric(float64(peak)/1e6, "peak-rss-MB")
			b.StartTimer()
		}
	}
}

// fillRooms writes rooms rooms of perRoom members each (the first the
// owner) with multi-row INSERTs, 1,000 rows a statement. Members come from a
// pool of users and a few domains, as on a real server.
func fillRooms(db *testDB, rooms, perRoom int) error {
	ctx := context.Background()
	const batch = 1000
	var err error
	insert := func(table string, cols int, rows [][]any) {
		if len(rows) == 0 || err != nil {
			return
		}
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + db.d.table(table))
		if cols == 3 {
			sb.WriteString(" (name, domain, flag) VALUES ")
		} else {
			sb.WriteString(" (username, domain, room, flag) VALUES ")
		}
		tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
		args := make([]any, 0, len(rows)*cols)
		for i, r := range rows {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(tuple)
			args = append(args, r...)
		}
		_, err = db.db.ExecContext(ctx, db.db.Rebind(sb.String()), args...)
	}
	var roomRows, memberRows [][]any
	flush := func(force bool) {
		if force || len(roomRows) >= batch {
			insert(db.cfg.RoomsTable, 3, roomRows)
			roomRows = roomRows[:0]
		}
		for force && len(memberRows) > 0 || len(memberRows) >= batch {
			n := min(batch, len(memberRows))
			insert(db.cfg.MembersTable, 4, memberRows[:n])
			memberRows = memberRows[n:]
		}
	}
	for i := range rooms {
		name, domain := "room"+strconv.Itoa(i), "conf"+strconv.Itoa(i%10)+".example.com"
		roomRows = append(roomRows, []any{name, domain, i % 2})
		roomURI := "sip:" + name + "@" + domain
		for m := range perRoom {
			u := (i*perRoom + m) % (rooms * perRoom / 3)
			flag := 0
			switch {
			case m == 0:
				flag = 1
			case m%5 == 1:
				flag = 2
			case m%7 == 2:
				flag = 4
			}
			memberRows = append(memberRows, []any{"user" + strconv.Itoa(u), "d" + strconv.Itoa(u%20) + ".example.com", roomURI, flag})
		}
		flush(false)
	}
	flush(true)
	return err
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// procStatus reads a "kB" field of /proc/self/status, in bytes; 0 where
// there is no /proc.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// resetPeakRSS resets VmHWM to the current RSS (Linux), so that the peak
// read after the load is the load's own.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }
