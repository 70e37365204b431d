package config

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrHelp is returned by Load when -h/--help was asked for; usage has been
// written.
var ErrHelp = flag.ErrHelp

// Action is what the command line asks imcd to do besides its keys.
type Action int

// The actions: run the daemon (no flag), -check, -version.
const (
	// ActionRun starts the daemon.
	ActionRun Action = iota
	// ActionCheck loads and validates the configuration and the database's
	// tables, prints what would be used, and starts nothing.
	ActionCheck
	// ActionVersion prints the version; the configuration is not read.
	ActionVersion
)

// Command is a parsed command line: the configuration (defaults, then the
// file, then the flags), the file it came from, and the action.
type Command struct {
	Config Config
	Path   string // the -config file; "" when none
	Action Action
}

// Load builds the configuration from the defaults, then the file named by
// -config (if any), then the flags: flags win over the file. Usage and flag
// errors are written to out. -check and -version are accepted and ignored:
// Parse reports them.
func Load(args []string, out io.Writer) (Config, string, error) {
	cmd, err := Parse(args, out)
	return cmd.Config, cmd.Path, err
}

// Parse reads the command line as Load does and says which action it asks
// for. With -version nothing else is read: a broken configuration file
// does not keep imcd from saying what it is.
func Parse(args []string, out io.Writer) (Command, error) {
	cfg := Default()
	keys := Keys()
	fs := flag.NewFlagSet("imcd", flag.ContinueOnError)
	fs.SetOutput(out)
	configPath := fs.String("config", "", "configuration file (key = value lines; see docs/configuration.md)")
	check := fs.Bool("check", false, "load and check the configuration and the database's tables, print what would be used, and exit (0: usable); nothing is started, bound or created")
	version := fs.Bool("version", false, "print imcd's version, commit and Go version, and exit")
	for _, k := range keys {
		fs.Var(&flagValue{k: k, c: &cfg}, k.Name, k.Usage)
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: imcd [-config FILE] [-check | -version] [-KEY VALUE ...]\n\n"+
			"imcd runs IMC conference rooms for OpenSIPS. Every KEY may be given in the\n"+
			"config file (KEY = VALUE) or as a flag; flags win.\n\n")
		fs.PrintDefaults()
	}
	cmd := Command{Config: cfg}
	if err := fs.Parse(args); err != nil {
		return cmd, err
	}
	switch {
	case *version:
		cmd.Action = ActionVersion
		return cmd, nil
	case *check:
		cmd.Action = ActionCheck
	}
	if fs.NArg() > 0 {
		return cmd, fmt.Errorf("%w: unexpected argument %q", ErrInvalid, fs.Arg(0))
	}
	cmd.Path = *configPath
	if *configPath != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		fromFile := Default()
		if err := readFile(*configPath, &fromFile); err != nil {
			return cmd, err
		}
		// Re-apply the flags given on the command line on top of the file.
		for _, k := range keys {
			if set[k.Name] {
				_ = k.Set(&fromFile, k.Get(&cfg))
			}
		}
		cfg = fromFile
	}
	cmd.Config = cfg
	return cmd, cfg.Validate()
}

// ReadFile applies the key = value lines of the file at path on top of c.
func ReadFile(path string, c *Config) error { return readFile(path, c) }

func readFile(path string, c *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	defer f.Close()
	return parse(f, path, c)
}

func parse(r io.Reader, name string, c *Config) error {
	byName := map[string]Key{}
	for _, k := range Keys() {
		byName[k.Name] = k
	}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		key, val, ok := strings.Cut(text, "=")
		if !ok {
			return &KeyError{Key: text, Where: fmt.Sprintf("%s:%d", name, line), Reason: "expected key = value"}
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			uq, err := strconv.Unquote(val)
			if err != nil {
				return &KeyError{Key: key, Where: fmt.Sprintf("%s:%d", name, line), Reason: "bad quoted value: " + err.Error()}
			}
			val = uq
		}
		k, ok := byName[key]
		if !ok {
			reason := "unknown key"
			if r := removed(key); r != "" {
				reason = r
			}
			return &KeyError{Key: key, Where: fmt.Sprintf("%s:%d", name, line), Reason: reason}
		}
		if err := k.Set(c, val); err != nil {
			return &KeyError{Key: key, Where: fmt.Sprintf("%s:%d", name, line), Reason: err.Error()}
		}
	}
	return sc.Err()
}

// removed explains a key imcd no longer has and what replaced it, "" for
// a key it never had: a file that still sets one is refused with that
// explanation rather than run with a setting silently ignored.
func removed(key string) string {
	switch key {
	case "delivery_window":
		return "removed: deliveries are no longer bounded by a window of slots held until each transaction ends; " +
			"use delivery_rate_max and delivery_burst (the write rate), delivery_outstanding (transactions kept in OpenSIPS) " +
			"and member_inflight (see docs/delivery.md), and delete this line"
	}
	return ""
}

// Validate checks what no single key can: combinations.
func (c *Config) Validate() error {
	if c.SubscribeRenew >= c.SubscribeExpire {
		return &KeyError{Key: "event_renew", Reason: fmt.Sprintf("must be shorter than event_expire (%s), got %s", c.SubscribeExpire, c.SubscribeRenew)}
	}
	if c.ForwardsMI() && c.OpenSIPSMI == "" {
		return &KeyError{Key: "mi_passthrough", Reason: "needs opensips_mi"}
	}
	if len(c.EventSources) == 0 {
		return &KeyError{Key: "event_sources", Reason: errNoSources.Error()}
	}
	if c.ProxyInOrder && c.OutboundProxy == "" {
		return &KeyError{Key: "proxy_in_order", Reason: "needs outbound_proxy (the socket of OpenSIPS with one worker the MESSAGEs go through)"}
	}
	if c.StartChar == 0 {
		return &KeyError{Key: "imc_cmd_start_char", Reason: "must be set"}
	}
	if c.DeliveryRateMin > c.DeliveryRateMax {
		return &KeyError{Key: "delivery_rate_min", Reason: fmt.Sprintf("must not exceed delivery_rate_max (%g), got %g", c.DeliveryRateMax, c.DeliveryRateMin)}
	}
	if c.UnreachableRetry > c.UnreachableRetryMax {
		return &KeyError{Key: "unreachable_retry", Reason: fmt.Sprintf("must not exceed unreachable_retry_max (%s), got %s", c.UnreachableRetryMax, c.UnreachableRetry)}
	}
	if c.GhostPolicy == GhostRemove && c.GhostAfter <= 0 {
		return &KeyError{Key: "ghost_policy", Reason: "remove needs ghost_after (how long a member must be unreachable)"}
	}
	if err := c.validateCanary(); err != nil { // canary.go
		return err
	}
	return c.validateRabbitMQ() // rabbitmq.go
}

// flagValue adapts a Key to flag.Value, writing into one Config.
type flagValue struct {
	k Key
	c *Config
}

func (f *flagValue) String() string {
	if f.c == nil {
		return ""
	}
	return f.k.Get(f.c)
}

func (f *flagValue) Set(v string) error {
	if err := f.k.Set(f.c, v); err != nil {
		return errors.New(err.Error())
	}
	return nil
}
