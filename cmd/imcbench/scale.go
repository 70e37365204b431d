package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// scaleRoomSize is the members per room of the scale runs.
const scaleRoomSize = 10

// listCalls is how many times imc_list_rooms is timed per row.
const listCalls = 5

// scale measures imcd's start with many rooms: load time, memory, and
// imc_list_rooms over mi_http.
func (b *bench) scale(ctx context.Context) (*table, error) {
	t := &table{title: "Scale: start-up load of N rooms × 10 members, memory, imc_list_rooms",
		columns: []string{"database", "rooms", "members", "fill s", "1st start → ready s", "1st load s",
			"restart → ready s", "restart load s", "restart CPU s imcd / DB server", "peak RSS", "RSS ready", "imc_list_rooms first ms", "p50 ms", "max ms", "reply"}}
	t.note("'start → ready': from exec of imcd to /readyz answering 200 (database opened, every room loaded, MI and event listeners up, subscribed). 'load': imcd's own 'rooms loaded … took' (the SELECTs and building the rooms). '1st': right after the tables were filled (the server may still be flushing them); 'restart': imcd stopped and started again on the same tables. 'peak RSS': the higher VmHWM of the two starts, read right after ready; 'RSS ready': VmRSS after the restart.")
	t.note("'restart CPU': the CPU imcd used from exec to ready, and the CPU the database server process (mariadbd/mysqld on this machine, when found in /proc) used meanwhile; SQLite runs inside imcd.")
	t.note("imc_list_rooms: POST /mi over imcd's mi_http (a reply this size does not fit a datagram), %d calls one after another, timed to the last byte read.", listCalls)
	t.note("Members are drawn from a pool of a third as many users as places (each user in about 3 rooms); rooms and users are in one domain.")
	for _, engine := range b.opt.scaleEngine {
		for _, n := range b.opt.scaleRooms {
			if ctx.Err() != nil {
				return t, ctx.Err()
			}
			b.logf("scale %s %d rooms: filling", engine, n)
			set := roomSet{prefix: "r", nRooms: n, size: scaleRoomSize, user: sharedUsers(n, scaleRoomSize)}
			e, fill, err := b.startEnv(ctx, envOptions{engine: engine, sets: []roomSet{set}})
			if err != nil {
				t.add(engine, num(float64(n)), num(float64(n*scaleRoomSize)), "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-")
				t.note("%s, %d rooms skipped: %v", engine, n, err)
				b.logf("scale %s %d rooms skipped: %v", engine, n, err)
				continue
			}
			ready := time.Since(e.imcd.started)
			peak, _ := memKB(e.imcd.pid(), "VmHWM")
			load := loadTook(e.imcd.Log.String())
			server := dbServerPID(engine)
			var serverCPU0 time.Duration
			if server > 0 {
				serverCPU0, _ = cpuTime(server)
			}
			if err := e.restart(); err != nil {
				e.close(ctx)
				return t, fmt.Errorf("%s, %d rooms: restart: %w", engine, n, err)
			}
			ready2 := time.Since(e.imcd.started)
			peak2, _ := memKB(e.imcd.pid(), "VmHWM")
			rss, _ := memKB(e.imcd.pid(), "VmRSS")
			load2 := loadTook(e.imcd.Log.String())
			cpuSplit := fixed(e.imcd.cpu().Seconds(), 2) + " / "
			if server > 0 {
				c, _ := cpuTime(server)
				cpuSplit += fixed((c - serverCPU0).Seconds(), 2)
			} else {
				cpuSplit += "(in imcd)"
			}
			peak = max(peak, peak2)
			var lat []time.Duration
			var size int
			var listErr error
			for range listCalls {
				reply, took, err := e.imcd.mi("imc_list_rooms")
				if err != nil {
					listErr = err
					break
				}
				if got := bytes.Count(reply, []byte(`"URI":`)); got != n {
					listErr = fmt.Errorf("imc_list_rooms listed %d rooms, want %d", got, n)
					break
				}
				lat, size = append(lat, took), len(reply)
			}
			label := "SQLite"
			if engine == "mysql" {
				label = "MariaDB/MySQL"
			}
			row := []string{label, num(float64(n)), num(float64(n * scaleRoomSize)), fixed(fill.Seconds(), 1),
				fixed(ready.Seconds(), 2), fixed(load.Seconds(), 2), fixed(ready2.Seconds(), 2), fixed(load2.Seconds(), 2), cpuSplit, mb(peak), mb(rss)}
			if listErr != nil || len(lat) == 0 {
				t.note("%s, %d rooms: imc_list_rooms: %v", engine, n, listErr)
				row = append(row, "-", "-", "-", "-")
			} else {
				first := lat[0]
				slices.Sort(lat)
				row = append(row, ms(first), ms(percentile(lat, 0.5)), ms(lat[len(lat)-1]), fmt.Sprintf("%.1f MB", float64(size)/1e6))
			}
			t.add(row...)
			b.logf("scale %s %d rooms: ready in %v (restart %v), load %v (restart %v), peak RSS %s", engine, n,
				ready.Round(time.Millisecond), ready2.Round(time.Millisecond), load, load2, mb(peak))
			if err := e.close(ctx); err != nil {
				t.note("imcd (%s, %d rooms) exited with: %v", engine, n, err)
			}
		}
	}
	return t, nil
}

// dbServerPID returns the pid of a local MariaDB/MySQL server for the
// mysql engine (found by its command name in /proc), 0 when there is none
// or the engine is SQLite.
func dbServerPID(engine string) int {
	if engine != "mysql" {
		return 0
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil {
			continue
		}
		switch strings.TrimSpace(string(comm)) {
		case "mariadbd", "mysqld":
			return pid
		}
	}
	return 0
}
