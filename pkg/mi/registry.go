package mi

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/valyala/fastjson"
)

// Handler runs one command. params is the request's params: nil, an object
// or an array, already matched against the command's Params by the Server,
// and valid only during the call (copy what must outlive it; StringParams
// does). It returns the encoded JSON result, or an error: a *jsonrpc.Error
// is sent as is, any other error becomes {"code":500,"message":<its text>}.
type Handler func(ctx context.Context, params *fastjson.Value) ([]byte, error)

// Command is one MI command.
type Command struct {
	// Name is the 4.x name ("imc:list_rooms"), listed by which.
	Name string
	// Aliases are other names that run the same command, such as the 3.x
	// name "imc_list_rooms". Unlike OpenSIPS, imcd's which lists them too:
	// opensips-cli refuses any name which does not list.
	Aliases []string
	// Params are the accepted sets of named params, e.g. [["room"]]; none
	// means the command takes no params. The Server refuses a request that
	// fits no set (-32602) before the handler runs, and which {"command":X}
	// returns them. Params given positionally map to a set's names in order.
	Params [][]string
	// Handler runs the command.
	Handler Handler
}

// Registry holds the commands the Server runs itself. It is safe for
// concurrent use.
type Registry struct {
	mu     sync.RWMutex
	cmds   []*Command
	byName map[string]*Command
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: make(map[string]*Command)}
}

// Register adds c under its name and aliases. A name registered already
// (as a name or an alias) or reserved by the Server is refused.
func (r *Registry) Register(c Command) error {
	if c.Name == "" || c.Handler == nil {
		return fmt.Errorf("%w: %q", ErrBadCommand, c.Name)
	}
	c.Aliases = slices.Clone(c.Aliases)
	c.Params = slices.Clone(c.Params)
	names := append([]string{c.Name}, c.Aliases...)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range names {
		if n == "" {
			return fmt.Errorf("%w: empty alias of %q", ErrBadCommand, c.Name)
		}
		if isWhich(n) {
			return fmt.Errorf("%w: %q", ErrReservedCommand, n)
		}
		if _, ok := r.byName[n]; ok || slices.Contains(names[:i], n) {
			return fmt.Errorf("%w: %q", ErrDuplicateCommand, n)
		}
	}
	cmd := &c
	r.cmds = append(r.cmds, cmd)
	for _, n := range names {
		r.byName[n] = cmd
	}
	return nil
}

// Lookup returns the command registered under name (a name or an alias).
func (r *Registry) Lookup(name string) (*Command, bool) {
	if r == nil {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.byName[name]
	return c, ok
}

// Names returns every name and alias, in registration order, each command's
// name before its aliases.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.byName))
	for _, c := range r.cmds {
		names = append(names, c.Name)
		names = append(names, c.Aliases...)
	}
	return names
}
