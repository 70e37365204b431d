package store

// standardSQL fills in what PostgreSQL and SQLite (3.24+) write alike: ON
// CONFLICT clauses, a bounded DELETE through a sub-select, the version row,
// and imcd's own tables with their indexes created apart. Only the
// history's id and the byte columns' types differ between the two.
func (d *dialect) standardSQL(historyID, bytes string) *dialect {
	d.createHistory = func(t string) []string {
		return []string{
			"CREATE TABLE IF NOT EXISTS " + t + " (\n" +
				"    id " + historyID + " PRIMARY KEY NOT NULL,\n" +
				"    room VARCHAR(64) NOT NULL,\n" +
				"    seq BIGINT NOT NULL,\n" +
				"    kind SMALLINT DEFAULT 0 NOT NULL,\n" +
				"    sender VARCHAR(255) NOT NULL,\n" +
				"    time_ms BIGINT NOT NULL,\n" +
				"    content_type VARCHAR(255) NOT NULL,\n" +
				"    body " + bytes + " NOT NULL,\n" +
				"    CONSTRAINT " + t + "_room_seq_idx UNIQUE (room, seq)\n" +
				")",
			"CREATE INDEX IF NOT EXISTS " + t + "_time_idx ON " + t + " (time_ms)",
		}
	}
	d.createTopics = func(t string) []string {
		return []string{"CREATE TABLE IF NOT EXISTS " + t + " (\n" +
			"    room VARCHAR(64) PRIMARY KEY NOT NULL,\n" +
			"    topic " + bytes + " NOT NULL,\n" +
			"    set_by VARCHAR(255) NOT NULL,\n" +
			"    time_ms BIGINT NOT NULL\n" +
			")"}
	}
	d.createMarks = func(t string) []string {
		return []string{"CREATE TABLE IF NOT EXISTS " + t + " (\n" +
			"    room VARCHAR(64) NOT NULL,\n" +
			"    username VARCHAR(64) NOT NULL,\n" +
			"    domain VARCHAR(64) NOT NULL,\n" +
			"    seq BIGINT NOT NULL,\n" +
			"    PRIMARY KEY (room, username, domain)\n" +
			")"}
	}
	d.createEvents = func(t string) []string {
		return []string{
			"CREATE TABLE IF NOT EXISTS " + t + " (\n" +
				"    event_key CHAR(32) PRIMARY KEY NOT NULL,\n" +
				"    claim BIGINT NOT NULL,\n" +
				"    time_ms BIGINT NOT NULL\n" +
				")",
			"CREATE INDEX IF NOT EXISTS " + t + "_time_idx ON " + t + " (time_ms)",
		}
	}
	d.createBans = func(t string) []string {
		return []string{"CREATE TABLE IF NOT EXISTS " + t + " (\n" +
			"    room VARCHAR(64) NOT NULL,\n" +
			"    username VARCHAR(64) NOT NULL,\n" +
			"    domain VARCHAR(64) NOT NULL,\n" +
			"    reason " + bytes + " NOT NULL,\n" +
			"    banned_by VARCHAR(255) NOT NULL,\n" +
			"    time_ms BIGINT NOT NULL,\n" +
			"    PRIMARY KEY (room, username, domain)\n" +
			")"}
	}
	d.createMod = func(t string) []string {
		return []string{"CREATE TABLE IF NOT EXISTS " + t + " (\n" +
			"    room VARCHAR(64) NOT NULL,\n" +
			"    username VARCHAR(64) NOT NULL,\n" +
			"    domain VARCHAR(64) NOT NULL,\n" +
			"    PRIMARY KEY (room, username, domain)\n" +
			")"}
	}
	d.insertIgnore = "INSERT INTO "
	d.ignoreSuffix = func(cols string) string { return " ON CONFLICT (" + cols + ") DO NOTHING" }
	d.upsertSuffix = func(key string, set ...string) string {
		s := " ON CONFLICT (" + key + ") DO UPDATE SET "
		for i, c := range set {
			if i > 0 {
				s += ", "
			}
			s += c + " = excluded." + c
		}
		return s
	}
	d.deleteSome = func(table, id, where, order string) string {
		return "DELETE FROM " + table + " WHERE " + id + " IN (SELECT " + id + " FROM " + table + " WHERE " + where + " ORDER BY " + order + " LIMIT ?)"
	}
	d.insertVersion = "INSERT INTO version (table_name, table_version) SELECT ?, ? " +
		"WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = ?)"
	return d
}
