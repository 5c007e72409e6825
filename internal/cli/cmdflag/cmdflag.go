// Package cmdflag is the flag handling every vltava command shares (the tools, bench and
// server): flags may come before, between or after positional arguments; -h and --help
// print the usage on stdout and are not an error, as in Kafka's tools and rpk, while a
// mistake prints the error and the usage on stderr; flags are shown as --long-name (Go's
// flag package accepts one or two dashes alike); aliases such as Kafka's
// --bootstrap-server are shown next to the flag they stand for; and a command's flags can
// be listed without running it, for shell completion.
package cmdflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ErrCollected is what Parse returns when the set was handed to Collect instead of parsing:
// the command must stop there, having done nothing.
var ErrCollected = errors.New("flags collected")

// Set is a flag.FlagSet that knows the command it belongs to.
type Set struct {
	*flag.FlagSet
	// Path is the command as typed, e.g. "topic create"; Synopsis what follows it in the
	// usage line, e.g. "NAME [flags]".
	Path, Synopsis string
	// About is printed under the usage line when it is not empty.
	About  string
	Stdout io.Writer
	// Collect, when set, receives the set from Parse, which then returns ErrCollected
	// without parsing: how completion learns a command's flags from the command itself.
	Collect func(*Set)

	help    bool
	aliases map[string][]string // flag name -> its aliases
	isAlias map[string]bool
}

// New returns an empty set for `vltava PATH SYNOPSIS`. Errors and the usage that follows
// them go to stderr; a requested usage goes to stdout.
func New(path, synopsis string, stdout, stderr io.Writer) *Set {
	s := &Set{FlagSet: flag.NewFlagSet(path, flag.ContinueOnError), Path: path, Synopsis: synopsis, Stdout: stdout,
		aliases: map[string][]string{}, isAlias: map[string]bool{}}
	s.SetOutput(stderr)
	// Registered, not left to the flag package, so that asking for help is told apart from
	// a mistake (both would otherwise call Usage on stderr and fail).
	s.BoolVar(&s.help, "h", false, "show this help")
	s.BoolVar(&s.help, "help", false, "show this help")
	s.isAlias["h"], s.isAlias["help"] = true, true
	s.FlagSet.Usage = func() { s.PrintUsage(s.Output()) }
	return s
}

// Alias makes alias another name for the registered flag name.
func (s *Set) Alias(alias, name string) {
	f := s.Lookup(name)
	if f == nil {
		panic("cmdflag: alias " + alias + " of unregistered flag " + name)
	}
	s.Var(f.Value, alias, "alias of --"+name)
	s.aliases[name] = append(s.aliases[name], alias)
	s.isAlias[alias] = true
}

// Parse parses args, which may mix flags and positional arguments, and returns the
// positional ones. Everything after a bare "--" is positional. With -h or --help it prints
// the usage to stdout and returns flag.ErrHelp, which callers treat as success.
func (s *Set) Parse(args []string) ([]string, error) {
	if s.Collect != nil {
		s.Collect(s)
		return nil, ErrCollected
	}
	pos, err := Interspersed(s.FlagSet, args)
	if err != nil {
		return nil, err
	}
	if s.help {
		s.PrintUsage(s.Stdout)
		return nil, flag.ErrHelp
	}
	return pos, nil
}

// Fail prints the usage on stderr and returns err: for a mistake the flag package cannot
// see, such as a missing argument.
func (s *Set) Fail(err error) error {
	s.PrintUsage(s.Output())
	return err
}

// Interspersed parses flags that may come before, between or after positional arguments,
// as operators expect (`topic create NAME --partitions 3`); the flag package alone stops
// at the first positional. Everything after a bare "--" is positional.
func Interspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// dashed is a flag as typed: -o for one letter, --name otherwise.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// Names returns every flag as typed on a command line (--name, -o), aliases included, sorted:
// the words shell completion offers.
func (s *Set) Names() []string {
	var out []string
	s.VisitAll(func(f *flag.Flag) { out = append(out, dashed(f.Name)) })
	sort.Strings(out)
	return out
}

// PrintUsage writes the usage line, About and every flag with its aliases, type and default.
func (s *Set) PrintUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: vltava %s %s\n", s.Path, s.Synopsis)
	if s.About != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(s.About, "\n"))
	}
	fmt.Fprintf(w, "\nflags:\n")
	s.VisitAll(func(f *flag.Flag) {
		if s.isAlias[f.Name] {
			return
		}
		name, doc := flag.UnquoteUsage(f)
		var b strings.Builder
		b.WriteString("  " + dashed(f.Name))
		for _, a := range s.aliases[f.Name] {
			b.WriteString(", " + dashed(a))
		}
		if name != "" {
			b.WriteString(" " + name)
		}
		b.WriteString("\n        ")
		b.WriteString(strings.ReplaceAll(doc, "\n", "\n        "))
		switch def := f.DefValue; {
		case def == "" || def == "0" || def == "false" || def == "0s" || def == "[]":
		case isString(f):
			fmt.Fprintf(&b, " (default %q)", def)
		default:
			fmt.Fprintf(&b, " (default %s)", def)
		}
		fmt.Fprintln(w, b.String())
	})
	fmt.Fprintln(w, "  -h, --help\n        show this help")
}

// isString tells string flags, whose defaults are shown quoted, from the rest.
func isString(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(string)
	return ok
}
