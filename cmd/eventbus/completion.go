package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-eventbus/eventbus/modelevent"
)

// subcommands are the second words of the commands that have them.
var subcommands = map[string][]string{
	"events":     {"list", "show", "retry", "replay", "redrive", "delete", "prune"},
	"consumers":  {"list", "stop", "start"},
	"commands":   {"list", "show"},
	"completion": {"bash", "zsh", "fish"},
}

// completionScripts hand the words typed so far to eventbus __complete, which answers
// from the commands table and each command's own --help, so completion never drifts
// from the flags.
var completionScripts = map[string]string{
	"bash": `# eventbus completion for bash: eval "$(eventbus completion bash)"
_eventbus() {
  local IFS=$'\n'
  COMPREPLY=($(eventbus __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _eventbus eventbus
`,
	"zsh": `#compdef eventbus
# eventbus completion for zsh: eval "$(eventbus completion zsh)"
_eventbus() {
  local -a c
  c=("${(@f)$(eventbus __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a c
}
compdef _eventbus eventbus
`,
	"fish": `# eventbus completion for fish: eventbus completion fish | source
complete -c eventbus -f -a '(eventbus __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`,
}

func runCompletion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("completion", "completion bash|zsh|fish\n\n"+
		"Prints a shell completion script. Install it with:\n"+
		"  bash: eval \"$(eventbus completion bash)\"   (e.g. in ~/.bashrc)\n"+
		"  zsh:  eval \"$(eventbus completion zsh)\"    (e.g. in ~/.zshrc)\n"+
		"  fish: eventbus completion fish | source", stdout)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || completionScripts[pos[0]] == "" {
		return usageError{"completion: name a shell (accepted: bash, zsh, fish)"}
	}
	_, err = io.WriteString(stdout, completionScripts[pos[0]])
	return err
}

// runComplete prints the completions of the last of words (the word being typed),
// one per line: command names, subcommands, flags of the command, or values of a
// flag that has a fixed set.
func runComplete(ctx context.Context, words []string, stdout, stderr io.Writer) error {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	var cands []string
	switch {
	case len(before) > 0 && (before[len(before)-1] == "--status" || before[len(before)-1] == "-status"):
		for _, s := range modelevent.Statuses {
			cands = append(cands, string(s))
		}
	case len(before) > 0 && (before[len(before)-1] == "--direction" || before[len(before)-1] == "-direction"):
		cands = []string{"produced", "consumed"}
	case len(before) == 0:
		for _, c := range commands() {
			cands = append(cands, c.name)
		}
	case len(before) == 1 && subcommands[before[0]] != nil && !strings.HasPrefix(cur, "-"):
		cands = subcommands[before[0]]
	case strings.HasPrefix(cur, "-"):
		cmd := before[:1]
		if subcommands[before[0]] != nil && len(before) > 1 {
			cmd = before[:2]
		}
		cands = commandFlags(ctx, cmd)
	}
	sort.Strings(cands)
	for _, c := range cands {
		if strings.HasPrefix(c, cur) {
			fmt.Fprintln(stdout, c)
		}
	}
	return nil
}

// commandFlags are the flags of cmd, read from its --help.
func commandFlags(ctx context.Context, cmd []string) []string {
	var buf bytes.Buffer
	_ = run(ctx, append(append([]string{}, cmd...), "--help"), &buf, io.Discard)
	var out []string
	for _, line := range strings.Split(buf.String(), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(line, "  -") && f[0] != "-h" {
			out = append(out, "-"+f[0])
		}
	}
	return out
}
