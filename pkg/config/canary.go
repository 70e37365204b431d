package config

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/pkg/canary"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

// Canary is the configuration of the canary (pkg/canary): a probe MESSAGE
// through each OpenSIPS of opensips_mi to imcd's own manager, expected
// back as an event.
type Canary struct {
	// Interval between probes; 0 turns the canary off.
	Interval time.Duration
	// Timeout is how long a probe may take to come back.
	Timeout time.Duration
	// Domain is the domain of the probes' From and To; "" = the first of
	// domains, else the host of each node's opensips_mi (CanaryURIs).
	Domain string
}

// minCanaryInterval keeps the probes from becoming a load of their own.
const minCanaryInterval = 100 * time.Millisecond

func defaultCanary() Canary {
	return Canary{Interval: canary.DefaultInterval, Timeout: canary.DefaultTimeout}
}

// canaryKeys are the canary's keys.
func canaryKeys() []Key {
	return []Key{
		duration("canary_interval", "how often imcd sends a probe MESSAGE through each OpenSIPS of opensips_mi to its own manager, expected back as an event (a broken event path makes /readyz fail, with a metric and a log line naming the leg: docs/operations.md); 0 = off", 0,
			func(c *Config) *time.Duration { return &c.Canary.Interval }),
		duration("canary_timeout", "how long a probe may take to come back before the event path counts as broken", 100*time.Millisecond,
			func(c *Config) *time.Duration { return &c.Canary.Timeout }),
		str("canary_domain", "domain of the probes' From (sip:imcd-canary@…) and request URI (the manager, sip:<manager_user>@…), one OpenSIPS takes as its own (is_myself); empty = the first of domains, else the host of each node's opensips_mi",
			func(c *Config) *string { return &c.Canary.Domain }, orEmpty(domain)),
	}
}

// CanaryOn reports whether the canary runs.
func (c *Config) CanaryOn() bool { return c.Canary.Interval > 0 }

// CanaryURIs returns the probes' From and request URI through the
// OpenSIPS whose MI socket is mi: from the canary's own user, to the
// manager (or, with no manager_user, a name under room_prefix, which the
// script's route to imcd matches as it matches a room), in canary_domain,
// else the first of domains, else mi's host.
func (c *Config) CanaryURIs(mi string) (from, to imc.URI, err error) {
	dom := c.Canary.Domain
	if dom == "" && len(c.Domains) > 0 && c.Domains[0] != imc.AnyDomain {
		dom = c.Domains[0]
	}
	if dom == "" {
		a, err := sockets.Parse(mi, sockets.UDP, sockets.Unixgram)
		if err != nil || a.Network != sockets.UDP {
			return from, to, fmt.Errorf("opensips_mi %s has no host to address the probes to: set canary_domain (or domains), or canary_interval = 0", mi)
		}
		host, _, _ := net.SplitHostPort(a.Addr)
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // an IPv6 address, as a SIP URI holds it
		}
		dom = host
	}
	user := c.ManagerUser
	if user == "" {
		user = c.RoomPrefix + canary.User
	}
	if from, err = imc.NewURI(canary.User, dom); err != nil {
		return from, to, fmt.Errorf("canary_domain %q: %w", dom, err)
	}
	if to, err = imc.NewURI(user, dom); err != nil {
		return from, to, fmt.Errorf("the canary's request URI %s@%s: %w", user, dom, err)
	}
	return from, to, nil
}

// validateCanary checks the interval. A node whose probes cannot be
// addressed (CanaryURIs) is not an error: the canary is on by default, and
// a configuration that worked before it must still start; the daemon says
// that node goes unwatched.
func (c *Config) validateCanary() error {
	if c.CanaryOn() && c.Canary.Interval < minCanaryInterval {
		return &KeyError{Key: "canary_interval", Reason: fmt.Sprintf("must be 0 (off) or at least %s, got %s", minCanaryInterval, c.Canary.Interval)}
	}
	return nil
}
