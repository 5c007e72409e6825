package cli

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vltava/vltava/internal/cli/cmdflag"
)

// completeBash runs the bash completion script for a command line whose last word is being
// typed, as bash does on TAB, and returns what it offers.
func completeBash(t *testing.T, script string, line ...string) []string {
	t.Helper()
	words := append([]string{"vltava"}, line...)
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, strconv.Quote(w))
	}
	prog := script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) +
		"\n_vltava\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	out, err := exec.Command("bash", "--norc", "--noprofile", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", line, err, out)
	}
	return strings.Fields(string(out))
}

func TestCompletionBash(t *testing.T) {
	env := Env{Extra: []Extra{{Name: "server", Summary: "run a broker", Flags: func() *cmdflag.Set {
		fs := cmdflag.New("server", "", nil, nil)
		fs.String("listen", "", "")
		return fs
	}}}}
	script := mustEnv(t, env, "completion", "bash")
	for _, tc := range []struct {
		line []string
		want []string
	}{
		{[]string{""}, []string{"server", "topic", "partition", "produce", "consume", "group", "cluster", "dev", "bench", "console", "version", "completion"}},
		{[]string{"partition", "elect-leaders", "--el"}, []string{"--election-type"}},
		{[]string{"to"}, []string{"topic"}},
		{[]string{"topic", "a"}, []string{"alter", "alter-config"}},
		{[]string{"topic", "create", "my-topic", "--pa"}, []string{"--partitions"}},
		{[]string{"topic", "create", "--brokers", "h:1", "--if"}, []string{"--if-not-exists"}},
		{[]string{"cluster", "config", "d"}, []string{"describe"}},
		{[]string{"cluster", "config", "alter", "--s"}, []string{"--set"}},
		{[]string{"consume", "--from-"}, []string{"--from-beginning"}},
		{[]string{"produce", "--header"}, []string{"--header", "--header-delimiter"}},
		{[]string{"bench", ""}, []string{"produce", "consume", "e2e"}},
		{[]string{"bench", "consume", "--con"}, []string{"--consumers"}},
		{[]string{"bench", "consume", "--ac"}, nil},
		{[]string{"server", "--li"}, []string{"--listen"}},
		{[]string{"console", "--all"}, []string{"--allow-host"}},
		{[]string{"completion", ""}, []string{"bash", "zsh"}},
		{[]string{"--ver"}, []string{"--version"}},
	} {
		got := completeBash(t, script, tc.line...)
		slices.Sort(got)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("vltava %s<TAB>: got %q, want %q", strings.Join(tc.line, " "), got, want)
		}
	}
}

// TestCompletionZsh checks the zsh script carries the same tree; zsh itself is not a test
// dependency, so the script's shape is checked, and bash -n-like parsing is left to zsh.
func TestCompletionZsh(t *testing.T) {
	script := mustEnv(t, Env{}, "completion", "zsh")
	for _, want := range []string{"#compdef vltava", "compdef _vltava vltava", `"topic create") subs=(); flags=(`,
		"--if-not-exists", `"bench consume") subs=(); flags=(`, "compadd -- "} {
		if !strings.Contains(script, want) {
			t.Errorf("zsh completion lacks %q", want)
		}
	}
	mustFail(t, `want bash or zsh`, "", "", "completion", "fish")
}

func mustEnv(t *testing.T, env Env, cmd string, args ...string) string {
	t.Helper()
	var out, errOut strings.Builder
	env.Stdout, env.Stderr = &out, &errOut
	ok, err := env.Run(t.Context(), cmd, args)
	if !ok || err != nil {
		t.Fatalf("vltava %s %q: ok=%v err=%v\n%s", cmd, args, ok, err, errOut.String())
	}
	return out.String()
}
