package all

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

func TestKinds(t *testing.T) {
	got := Kinds()
	want := []string{"appendlog", "hybridlog", "lsm", "memonly"}
	if !slices.Equal(got, want) {
		t.Fatalf("Kinds() = %v, want %v", got, want)
	}
}

func TestUnknownKind(t *testing.T) {
	_, err := Open("btree", nil, engines.OpenOptions{Dir: t.TempDir()})
	if !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("Open(btree) = %v, want ErrUnknownKind", err)
	}
	for _, k := range Kinds() {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not list kind %s", err, k)
		}
	}
	if _, err := CanonicalParams("btree", nil); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("CanonicalParams(btree) = %v, want ErrUnknownKind", err)
	}
	if p := DefaultParams("btree"); p != nil {
		t.Fatalf("DefaultParams(btree) = %v, want nil", p)
	}
}

func TestCanonicalParams(t *testing.T) {
	for _, k := range Kinds() {
		t.Run(k, func(t *testing.T) {
			def := DefaultParams(k)
			if def == nil {
				t.Fatal("DefaultParams is nil")
			}
			c, err := CanonicalParams(k, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(c, def) {
				t.Fatalf("CanonicalParams(nil) = %v, DefaultParams = %v", c, def)
			}
			c2, err := CanonicalParams(k, c)
			if err != nil || !maps.Equal(c, c2) {
				t.Fatalf("canonical params do not round-trip: %v -> %v, %v", c, c2, err)
			}
			// Every default is a name the kind accepts, and unknown names are
			// refused.
			bad := maps.Clone(c)
			bad["no_such_parameter"] = "1"
			if _, err := CanonicalParams(k, bad); !errors.Is(err, ErrUnknownParam) || !strings.Contains(err.Error(), "no_such_parameter") {
				t.Fatalf("unknown parameter accepted or not named: %v", err)
			}
			if _, err := Open(k, bad, engines.OpenOptions{Dir: t.TempDir()}); !errors.Is(err, ErrUnknownParam) {
				t.Fatalf("Open with an unknown parameter: %v, want ErrUnknownParam", err)
			}
			// A bad value of a real parameter is a ParamError naming it.
			for name := range c {
				p := maps.Clone(c)
				p[name] = "not-a-number"
				_, err := CanonicalParams(k, p)
				var pe *engines.ParamError
				if !errors.As(err, &pe) || pe.Name != name {
					t.Errorf("%s=not-a-number: %v, want a ParamError naming it", name, err)
				}
			}
		})
	}
}

func TestOpenEveryKind(t *testing.T) {
	for _, k := range Kinds() {
		t.Run(k, func(t *testing.T) {
			dir := t.TempDir()
			e, err := Open(k, nil, engines.OpenOptions{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Set([]byte("key"), []byte("value")); err != nil {
				t.Fatal(err)
			}
			cp, err := e.Seal()
			if err != nil {
				t.Fatal(err)
			}
			if cp.Kind != k {
				t.Fatalf("checkpoint kind %q, want %q", cp.Kind, k)
			}
			e.Release(cp)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e, err = Open(k, DefaultParams(k), engines.OpenOptions{Dir: dir, Checkpoint: &cp})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			v, found, err := e.Get([]byte("key"))
			if err != nil || !found || string(v) != "value" {
				t.Fatalf("get after reopen = %q, %v, %v", v, found, err)
			}
		})
	}
}

// TestDescribe: the description of every kind matches what its parser
// takes: the same parameter names as its defaults, and values written in
// each parameter's unit.
func TestDescribe(t *testing.T) {
	kinds := Describe()
	var names []string
	for _, ki := range kinds {
		names = append(names, ki.Name)
	}
	if !slices.Equal(names, Kinds()) {
		t.Fatalf("Describe names %v, Kinds %v", names, Kinds())
	}
	for _, ki := range kinds {
		t.Run(ki.Name, func(t *testing.T) {
			if ki.Help == "" {
				t.Error("no help text")
			}
			def := DefaultParams(ki.Name)
			var described []string
			for _, p := range ki.Params {
				described = append(described, p.Name)
				if p.Help == "" {
					t.Errorf("%s: no help text", p.Name)
				}
			}
			if got, want := slices.Sorted(slices.Values(described)), slices.Sorted(maps.Keys(def)); !slices.Equal(got, want) {
				t.Fatalf("described parameters %v, the engine takes %v", got, want)
			}
			for _, p := range ki.Params {
				// A size takes a suffix ("4096B"); a count or a bool does not.
				suffixed := maps.Clone(def)
				suffixed[p.Name] = def[p.Name] + "B"
				_, errSuffix := CanonicalParams(ki.Name, suffixed)
				flipped := maps.Clone(def)
				flipped[p.Name] = map[string]string{"true": "false", "false": "true"}[def[p.Name]]
				_, errBool := CanonicalParams(ki.Name, flipped)
				switch p.Unit {
				case UnitSize:
					if errSuffix != nil {
						t.Errorf("%s is described as a size but refuses %q: %v", p.Name, suffixed[p.Name], errSuffix)
					}
				case UnitCount:
					if errSuffix == nil {
						t.Errorf("%s is described as a count but takes %q", p.Name, suffixed[p.Name])
					}
				case UnitBool:
					if errBool != nil || errSuffix == nil {
						t.Errorf("%s is described as a bool: %q -> %v, %q -> %v", p.Name, flipped[p.Name], errBool, suffixed[p.Name], errSuffix)
					}
				default:
					t.Errorf("%s: unknown unit %q", p.Name, p.Unit)
				}
			}
		})
	}
}
