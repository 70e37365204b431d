package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// BenchmarkAppendHistory measures the history writer's cost: one op is one
// AppendHistory of batch chat lines (80-byte bodies, 100 rooms). It reports
// lines/s and the CPU per line of the test process (client-µs/line) and of
// the database server's processes (server-µs/line; other users of the
// server count too). allocs/op is per batch.
func BenchmarkAppendHistory(b *testing.B) {
	for _, engine := range allEngines {
		for _, batch := range []int{1, 16, 128, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", engine, batch), func(b *testing.B) {
				needEngine(b, engine)
				db := openWith(b, historyConfig(b, engine))
				ctx := context.Background()
				const rooms = 100
				var roomURIs [rooms]imc.URI
				var seqs [rooms]int64
				for i := range roomURIs {
					roomURIs[i] = imc.URI{User: "room" + strconv.Itoa(i), Host: "conf.example.com"}
				}
				body := bytes.Repeat([]byte("chat "), 16)
				lines := make([]HistoryLine, batch)
				now := time.Now()
				k := 0
				b.ReportAllocs()
				cpu := startCPU(engine)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range lines {
						r := k % rooms
						k++
						seqs[r]++
						lines[j] = HistoryLine{Room: roomURIs[r], Seq: seqs[r], Sender: "sip:alice@example.com",
							Time: now, ContentType: "text/plain", Body: body}
					}
					if n, err := db.AppendHistory(ctx, lines); err != nil || n != batch {
						b.Fatalf("AppendHistory = %d, %v", n, err)
					}
				}
				b.StopTimer()
				cpu.report(b, b.N*batch, "line")
			})
		}
	}
}

// BenchmarkMarkEvents measures applied-once keys for chat lines: one op is
// one MarkEvents of batch new keys.
func BenchmarkMarkEvents(b *testing.B) {
	for _, engine := range allEngines {
		for _, batch := range []int{1, 64, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", engine, batch), func(b *testing.B) {
				needEngine(b, engine)
				db := openWith(b, historyConfig(b, engine))
				ctx := context.Background()
				all := make([]string, b.N*batch)
				for i := range all {
					all[i] = EventKey("call-"+strconv.Itoa(i), "1", "tag")
				}
				b.ReportAllocs()
				cpu := startCPU(engine)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					fresh, err := db.MarkEvents(ctx, all[i*batch:(i+1)*batch])
					if err != nil || !fresh[batch-1] {
						b.Fatalf("MarkEvents = %v, %v", fresh, err)
					}
				}
				b.StopTimer()
				cpu.report(b, b.N*batch, "key")
			})
		}
	}
}

// cpuMeter reads the CPU time of this process and of the engine's server.
type cpuMeter struct {
	engine       string
	self, server time.Duration
}

func startCPU(engine string) *cpuMeter {
	return &cpuMeter{engine: engine, self: selfCPU(), server: serverCPU(engine)}
}

// report adds the rate and the CPU per unit of the n units done since
// startCPU; call it with the timer stopped.
func (m *cpuMeter) report(b *testing.B, n int, unit string) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), unit+"s/s")
	b.ReportMetric(float64((selfCPU()-m.self).Microseconds())/float64(n), "client-µs/"+unit)
	if m.engine != dburl.SQLite {
		b.ReportMetric(float64((serverCPU(m.engine)-m.server).Microseconds())/float64(n), "server-µs/"+unit)
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU sums the CPU time of the local server's processes (all of
// PostgreSQL's), read from /proc; 0 where there is none.
func serverCPU(engine string) time.Duration {
	names := map[string]bool{"mariadbd": engine == dburl.MySQL, "mysqld": engine == dburl.MySQL, "postgres": engine == dburl.Postgres}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || !names[s[open+1:end]] {
			continue
		}
		// After "(comm) ": state is field 3; utime and stime are 14 and 15.
		f := strings.Fields(s[end+2:])
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + st
		}
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ
}

// BenchmarkLoadRooms measures re-reading one room after a commit in doubt,
// in tables of 1,000 rooms / 10,000 members (and with IMCD_BENCH_BIG=1,
// 100,000 / 1,000,000): an index lookup on MySQL, a scan of the members
// table on PostgreSQL and SQLite.
func BenchmarkLoadRooms(b *testing.B) {
	for _, rooms := range loadSizes() {
		for _, engine := range allEngines {
			b.Run(fmt.Sprintf("%s/rooms=%d", engine, rooms), func(b *testing.B) {
				needEngine(b, engine)
				db := openTest(b, engine)
				if err := fillRooms(db, rooms, 10); err != nil {
					b.Fatal(err)
				}
				ask := []imc.URI{{User: "room" + strconv.Itoa(rooms/2), Host: "conf" + strconv.Itoa(rooms/2%10) + ".example.com"}}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					got, err := db.LoadRooms(context.Background(), ask)
					if err != nil || got[ask[0].Key()] == nil || len(got[ask[0].Key()].Members()) != 10 {
						b.Fatalf("LoadRooms = %v, %v", got, err)
					}
				}
			})
		}
	}
}

// BenchmarkApplyOnce is BenchmarkApply with an event key in the same
// transaction: the price of applying events once across instances.
func BenchmarkApplyOnce(b *testing.B) {
	for _, engine := range allEngines {
		b.Run(engine, func(b *testing.B) {
			needEngine(b, engine)
			db := openWith(b, historyConfig(b, engine))
			ctx := context.Background()
			room := benchRoom(b, db)
			keys := make([]string, b.N)
			for i := range keys {
				keys[i] = EventKey("call-"+strconv.Itoa(i), "1", "tag")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if applied, err := db.ApplyOnce(ctx, keys[i], []imc.Change{joinOrLeave(room, i)}); err != nil || !applied {
					b.Fatal(applied, err)
				}
			}
		})
	}
}
