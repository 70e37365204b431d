// Package monitoringtest keeps the Grafana dashboard and the Prometheus
// alerting rules of scripts/monitoring/ true to imcd: its tests check the
// rules with promtool (syntax, and that each alert fires on the series it
// is about), the dashboard's format (schema version, datasource and PromQL
// of every panel), and that every metric and label either of them names
// exists in the /metrics of a real imcd binary that has been exercised
// (both event sources). It has no code of its own.
package monitoringtest
