package mi

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/valyala/fastjson"
)

func nopHandler(context.Context, *fastjson.Value) ([]byte, error) { return []byte(`"OK"`), nil }

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	f := func(c Command, want error) {
		t.Helper()
		if err := r.Register(c); !errors.Is(err, want) {
			t.Errorf("Register(%q %q): %v, want %v", c.Name, c.Aliases, err, want)
		}
	}
	f(Command{Name: "a:one", Aliases: []string{"a_one"}, Handler: nopHandler}, nil)
	f(Command{Name: "a:two", Handler: nopHandler}, nil)
	f(Command{Name: "a:one", Handler: nopHandler}, ErrDuplicateCommand)
	f(Command{Name: "a:three", Aliases: []string{"a_one"}, Handler: nopHandler}, ErrDuplicateCommand)
	f(Command{Name: "a:four", Aliases: []string{"a_four", "a_four"}, Handler: nopHandler}, ErrDuplicateCommand)
	f(Command{Name: "a:five", Aliases: []string{""}, Handler: nopHandler}, ErrBadCommand)
	f(Command{Name: "which", Handler: nopHandler}, ErrReservedCommand)
	f(Command{Name: "a:six", Aliases: []string{"core:which"}, Handler: nopHandler}, ErrReservedCommand)
	f(Command{Name: "", Handler: nopHandler}, ErrBadCommand)
	f(Command{Name: "a:seven"}, ErrBadCommand)

	if got, want := r.Names(), []string{"a:one", "a_one", "a:two"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	c1, ok1 := r.Lookup("a_one")
	c2, ok2 := r.Lookup("a:one")
	if !ok1 || !ok2 || c1 != c2 || c1.Name != "a:one" {
		t.Errorf("an alias and its name must find the same command")
	}
	if _, ok := r.Lookup("a:three"); ok {
		t.Errorf("a refused command was registered")
	}
	var nilReg *Registry
	if _, ok := nilReg.Lookup("x"); ok || nilReg.Names() != nil {
		t.Errorf("a nil registry has no commands")
	}
}

func TestMatchParams(t *testing.T) {
	var p fastjson.Parser
	sets := [][]string{{"room", "owner"}, {"room", "owner", "private"}}
	f := func(sets [][]string, params string, wantSet []string, wantData string) {
		t.Helper()
		var v *fastjson.Value
		if params != "" {
			var err error
			if v, err = p.Parse(params); err != nil {
				t.Fatal(err)
			}
		}
		set, jerr := matchParams(sets, v)
		data := ""
		if jerr != nil {
			data = jerr.Data
		}
		if !slices.Equal(set, wantSet) || data != wantData {
			t.Errorf("matchParams(%q, %s) = %q %q, want %q %q", sets, params, set, data, wantSet, wantData)
		}
	}
	f(nil, "", nil, "")
	f(nil, "{}", nil, "")
	f(nil, "[]", nil, "")
	f(nil, `{"foo":"bar"}`, nil, msgParamCount)
	f(nil, `["x"]`, nil, msgParamCount)
	f(sets, "", nil, msgParamCount)
	f(sets, `{"room":"r"}`, nil, msgParamCount)
	f(sets, `{"room":"r","owner":"o"}`, sets[0], "")
	f(sets, `{"owner":"o","room":"r"}`, sets[0], "")
	f(sets, `{"room":"r","user":"o"}`, nil, msgParamNames)
	f(sets, `{"room":"r","owner":"o","private":"yes"}`, sets[1], "")
	f(sets, `["r","o"]`, sets[0], "")
	f(sets, `["r","o","yes"]`, sets[1], "")
	f(sets, `["r","o","yes","x"]`, nil, msgParamCount)
}

func TestStringParams(t *testing.T) {
	var p fastjson.Parser
	f := func(params string, want map[string]string, wantErr string) {
		t.Helper()
		v, err := p.Parse(params)
		if err != nil {
			t.Fatal(err)
		}
		got, err := StringParams(v, [][]string{{"room", "user"}})
		if wantErr != "" {
			if err == nil || err.Error() != wantErr {
				t.Errorf("StringParams(%s): %v, want %s", params, err, wantErr)
			}
			return
		}
		if err != nil || len(got) != len(want) || got["room"] != want["room"] || got["user"] != want["user"] {
			t.Errorf("StringParams(%s) = %q %v, want %q", params, got, err, want)
		}
	}
	f(`{"room":"r","user":"u"}`, map[string]string{"room": "r", "user": "u"}, "")
	f(`["r","u"]`, map[string]string{"room": "r", "user": "u"}, "")
	f(`{"room":"r\u00e9\n","user":""}`, map[string]string{"room": "ré\n", "user": ""}, "")
	f(`{"room":1,"user":"u"}`, nil, "-32602 Invalid params: Parameter 'room' must be a string")
	f(`["r",{}]`, nil, "-32602 Invalid params: Parameter 'user' must be a string")
	f(`{"room":"r"}`, nil, "-32602 Invalid params: Too few or too many parameters")
}
